"""vmcp repository source ``pypi``: MCP servers published as Python packages."""
