"""vmcp's ``jwt`` auth driver: front clients present JWTs issued by an OAuth server."""
