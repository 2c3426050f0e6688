"""Server-rendered HTML: one layout, and a function per page (every value escaped)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

NAV = (("/", "Overview"), ("/personas", "Personas"), ("/audit", "Audit trail"),
       ("/tokens", "Tokens"), ("/logs", "Log"))
RULE_KINDS = ("allow_tools", "deny_tools", "allow_prompts", "deny_prompts")
STYLE = """
body{font:14px system-ui,sans-serif;margin:0;color:#1d2433;background:#f5f6f8}
header{background:#1d2433;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#c9d4ff;text-decoration:none}header a.here{color:#fff;font-weight:600}
main{padding:16px 24px}table{border-collapse:collapse;background:#fff;margin:8px 0 20px}
th,td{border:1px solid #dde1e8;padding:4px 10px;text-align:left}th{background:#eef1f6}
.ok,.up,.closed{color:#187a3a}.bad,.failed,.down,.open{color:#b3261e}
.starting,.restarting,.half_open{color:#a15c00}.once{background:#fff7d6;padding:8px;
border:1px solid #e6c34a;font-family:monospace}form.inline{display:inline}
"""


def layout(title: str, path: str, body: str, csrf: str | None) -> str:
    """A whole page: navigation (and a log-out button when signed in), then ``body``."""
    links = "".join(f'<a href="{href}" class="{"here" if href == path else ""}">{name}</a>'
                    for href, name in NAV)
    logout = (f'<form class="inline" method="post" action="/logout">{_csrf(csrf)}'
              '<button id="logout">Sign out</button></form>') if csrf else ""
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)} · vmcp"
            f"</title><style>{STYLE}</style></head><body><header><strong>vmcp</strong>"
            f"{links}{logout}</header><main><h1>{escape(title)}</h1>{body}</main></body></html>")


def _csrf(token: str | None) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(token or "")}">'


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return f'<td class="{escape(text)}">{escape(text)}</td>'


def table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; a cell whose text is a state word gets that state's colour."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def overview(status: dict[str, Any]) -> str:
    """Health, fronts, sessions and every mount with its replicas and circuits."""
    health = status["health"]
    verdict = ("<p id=ready class=ok>Ready</p>" if health["ready"] else
               f'<p id=ready class=bad>Not ready: {escape(", ".join(health["problems"]))}</p>')
    fronts = table("fronts", ["Front", "Listening on"],
                   [(f["name"], f["where"]) for f in status["fronts"]])
    mounts = table("mounts", ["Mount", "State", "Replica", "Replica state", "Circuit",
                              "In flight", "Tools", "Problem"],
                   [(m["id"], m["state"], r["id"], r["state"], r["circuit"], r["in_flight"],
                     m["tools"], m.get("error"))
                    for m in status["mounts"] for r in m["replicas"] or [{}]])
    return (f"{verdict}<p>Sessions: <span id=sessions>{status['sessions']}</span></p>"
            f"<h2>Fronts</h2>{fronts}<h2>Mounts</h2>{mounts}")


def audit(records: Sequence[dict[str, Any]]) -> str:
    """The latest audit records, newest first."""
    if not records:
        return "<p id=empty>No audit records (enable <code>[audit]</code>).</p>"
    return table("audit", ["Time", "Caller", "Persona", "Mount", "Method", "Tool", "Outcome",
                           "ms"],
                 [(r.get("time"), r.get("caller"), r.get("persona"), r.get("mount"),
                   r.get("method"), r.get("tool") or r.get("target"), r.get("outcome"),
                   r.get("latency_ms")) for r in reversed(records)])


def tokens(records: Sequence[dict[str, Any]], csrf: str | None, created: str | None = None,
           error: str | None = None) -> str:
    """The tokens (never their secrets), a create form and a revoke button each; a token
    just created is shown this once."""
    shown = (f'<p>New token (shown only this once):</p><p id=new-token class=once>'
             f'{escape(created)}</p>') if created else ""
    problem = f'<p id=error class=bad>{escape(error)}</p>' if error else ""
    rows = "".join(
        f'<tr id="token-{escape(r["id"])}"><td>{escape(r["id"])}</td><td>{escape(r["name"])}'
        f'</td><td>{escape(r["persona"])}</td><td>{escape(r["expires"] or "never")}</td><td>'
        f'<form class=inline method=post action="/tokens/revoke">{_csrf(csrf)}'
        f'<input type=hidden name=id value="{escape(r["id"])}"><button>Revoke</button></form>'
        "</td></tr>" for r in records)
    listing = ("<table id=tokens><thead><tr><th>Id</th><th>Name</th><th>Persona</th>"
               f"<th>Expires</th><th></th></tr></thead><tbody>{rows}</tbody></table>")
    form = (f'<h2>Create a token</h2><form id=create method=post action="/tokens/create">'
            f'{_csrf(csrf)}<label>Persona <input name=persona required></label> '
            '<label>Name <input name=name></label> <label>Expires <input name=expires '
            'value="90d"></label> <button>Create</button></form>')
    return shown + problem + listing + form


def login(error: str | None = None) -> str:
    """The sign-in form: a token of an admin persona."""
    problem = f'<p id=error class=bad>{escape(error)}</p>' if error else ""
    return (f'{problem}<form id=login method=post action="/login"><label>Token '
            '<input type=password name=token required></label> <button>Sign in</button>'
            "</form>")


def _select(name: str, options: Iterable[str]) -> str:
    choices = "".join(f'<option value="{escape(o)}">{escape(o)}</option>' for o in options)
    return f'<select name="{name}">{choices}</select>'


def personas(entries: Sequence[dict[str, Any]], mounts: Sequence[str], csrf: str | None,
             error: str | None = None) -> str:
    """Each persona: its servers with their rules and what it sees of each mount, and
    forms to enable/disable a server and to add or remove an allow/deny pattern."""
    problem = f'<p id=error class=bad>{escape(error)}</p>' if error else ""
    parts = [problem]
    for entry in entries:
        name = entry["name"]
        rows = [(server, ", ".join(f"{k}: {' '.join(v)}" for k, v in rules.items()
                                   if k in RULE_KINDS and v) or "all",
                 ", ".join(entry["sees"].get(server, [])) or "-")
                for server, rules in entry["servers"].items()]
        hidden = f'{_csrf(csrf)}<input type=hidden name=persona value="{escape(name)}">'
        parts.append(
            f'<section id="persona-{escape(name)}"><h2>{escape(name)}</h2>'
            + table(f"servers-{name}", ["Server", "Rules", "Tools it sees"], rows)
            + f'<form class="enable" method=post action="/personas/enable">{hidden}'
            f'{_select("server", mounts)} <button name=action value=enable>Enable</button> '
            '<button name=action value=disable>Disable</button></form>'
            f'<form class="rule" method=post action="/personas/rule">{hidden}'
            f'{_select("server", entry["servers"])} {_select("kind", RULE_KINDS)} '
            '<input name=pattern required placeholder="pattern, e.g. read_*"> '
            '<button name=action value=add>Add</button> '
            '<button name=action value=remove>Remove</button></form></section>')
    return "".join(parts) or "<p>No personas (vmcp persona create NAME).</p>"


def log_tail(lines: Sequence[str], source: str | None) -> str:
    """The last lines of the gateway's log file."""
    if source is None:
        return "<p id=empty>The gateway logs to stderr only ([logging] file is not set).</p>"
    return (f"<p>{escape(source)}</p><pre id=log>" + escape("".join(lines)) + "</pre>")
