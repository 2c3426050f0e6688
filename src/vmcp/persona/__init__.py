"""Personas: named sets of what a caller may use, their store, and the compiled policy.

A persona enables servers (mounts) and, per server, narrows tools and prompts with allow and
deny name patterns, and may be read-only. The gateway enforces the :class:`Policy`; this
package never imports the gateway.
"""

from vmcp.persona.model import NAME_RE, Persona, ServerRules
from vmcp.persona.policy import Policy
from vmcp.persona.store import (
    PersonaCorrupt,
    PersonaError,
    PersonaExists,
    PersonaNotFound,
    PersonaStore,
)

__all__ = [
    "NAME_RE",
    "Persona",
    "PersonaCorrupt",
    "PersonaError",
    "PersonaExists",
    "PersonaNotFound",
    "PersonaStore",
    "Policy",
    "ServerRules",
]
