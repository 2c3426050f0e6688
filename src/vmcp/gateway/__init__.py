"""The front side: sessions, dispatch, aggregation, namespace and the reverse-request relay."""
