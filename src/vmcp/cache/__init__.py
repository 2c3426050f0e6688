"""The cache layer: driver interface and the built-in ``memory`` driver."""
