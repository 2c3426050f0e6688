"""The routing engine: balancers, and the policies applied to every routed call."""
