"""vmcp's WebSocket transport (driver ``ws``): one JSON-RPC message per text frame."""
