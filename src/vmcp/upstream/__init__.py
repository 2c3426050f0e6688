"""The back side: one client connection to one backend replica."""
