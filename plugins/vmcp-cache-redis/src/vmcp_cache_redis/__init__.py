"""vmcp cache driver ``redis`` (redis.asyncio)."""
