"""Configuration shipped with vmcp: used when the user has none."""
