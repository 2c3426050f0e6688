"""A web console served by the running gateway (``[console] enabled``)."""
