"""State shared by the gateway instances of one deployment (``[cluster]``).

The kernel defines what is shared (:class:`SessionRecord`) and the interface of the store
(:class:`SharedState`); a driver in the entry-point group ``vmcp.cluster`` implements it
(``redis`` from the ``vmcp-cluster-redis`` plugin). With no Redis URL configured nothing is
loaded and every session lives in its process's memory, at no cost per message.
"""

from vmcp.cluster.base import InstanceInfo, MessageHandler, SharedState, list_instances, open_shared
from vmcp.cluster.record import SessionRecord, instance_of

__all__ = [
    "InstanceInfo",
    "MessageHandler",
    "SessionRecord",
    "SharedState",
    "instance_of",
    "list_instances",
    "open_shared",
]
