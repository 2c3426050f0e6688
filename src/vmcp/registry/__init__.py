"""Server management: mounts, their replicas, and what each backend offers."""
