"""Repository sources of server manifests."""
