"""Transports: the wire formats vmcp speaks to clients (front) and backends (back)."""
