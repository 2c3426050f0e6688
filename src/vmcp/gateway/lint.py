"""``vmcp tools --lint``: the exposed tool and prompt names checked against the name rules.

Reports every name's length, the full name behind each alias, names that break MCP's or the
common model APIs' rules, and the names hidden because they collide with an earlier mount's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vmcp.gateway.aliases import name_problems

if TYPE_CHECKING:
    from vmcp.gateway.gateway import Gateway


def lint_report(gateway: Gateway) -> dict[str, Any]:
    """Every exposed tool and prompt name with its problems, the collisions, failed mounts.

    ``ok`` is false when an exposed name breaks a rule, an item is hidden by a collision, or
    a mount failed (a mount whose unprefixed names collide is refused at start).
    """
    namespace = gateway.namespace
    names = []
    for kind, routes in (("tool", namespace.tools), ("prompt", namespace.prompts)):
        for exposed, (mount_id, backend_name) in routes.items():
            entry: dict[str, Any] = {
                "kind": kind, "name": exposed, "length": len(exposed), "mount": mount_id,
                "backend_name": backend_name,
                "problems": name_problems(exposed, namespace.max_name),
            }
            full = namespace.aliases.get(exposed)
            if full is not None:
                entry["alias_of"] = full
                entry["full_length"] = len(full)
            names.append(entry)
    collisions = [{"mount": mount_id, "problem": problem}
                  for mount_id, problem in namespace.collisions.items()]
    failed = [{"mount": mount_id, "error": mount.error}
              for mount_id, mount in gateway.mounts.items() if mount.state == "failed"]
    ok = not collisions and not failed and not any(entry["problems"] for entry in names)
    return {"ok": ok, "budget": namespace.max_name, "names": names,
            "collisions": collisions, "failed_mounts": failed}
