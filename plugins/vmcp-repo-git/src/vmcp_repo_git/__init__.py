"""vmcp repository source ``git``: manifests kept in a git repository."""
