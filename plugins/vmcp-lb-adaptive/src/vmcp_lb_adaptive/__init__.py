"""Adaptive load balancers for vmcp, registered in the ``vmcp.balancers`` entry-point group."""
