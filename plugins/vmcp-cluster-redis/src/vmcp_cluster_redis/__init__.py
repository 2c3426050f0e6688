"""The ``redis`` cluster driver of vmcp."""
