"""The audit trail: one JSON line per routed call, written by a built-in request middleware."""
