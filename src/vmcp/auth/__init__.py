"""Authentication of front connections: the auth driver interface and principals."""
