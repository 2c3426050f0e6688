"""vmcp repository source ``http``: a static index or an MCP registry over HTTP."""
