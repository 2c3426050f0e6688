"""vmcp benchmarks: the gateway's cost measured against a direct connection to the same backend.

Run ``uv run python -m bench`` from the repository root (``--help`` for the options).
"""
