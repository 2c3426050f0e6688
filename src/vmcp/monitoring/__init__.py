"""Monitoring: Prometheus metrics of the running gateway (``[monitoring] metrics_port``)."""
