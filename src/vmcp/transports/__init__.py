"""Transports: the wire formats vmcp speaks, on the front (serving clients) and back (to backends)."""
