"""The protocol layer: JSON-RPC framing and errors, MCP versions and the method table."""
