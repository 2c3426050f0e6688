"""The benchmark scenarios, one module each; every ``run(settings)`` returns a JSON-ready dict."""
