"""OpenTelemetry traces for vmcp, through the request middleware and lifecycle hooks."""
