"""OAuth 2.1 toward protected backends: vmcp as the OAuth client of each remote mount."""
