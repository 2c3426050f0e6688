"""vmcp transports over HTTP."""
