"""vmcp cache driver ``disk`` (diskcache)."""
