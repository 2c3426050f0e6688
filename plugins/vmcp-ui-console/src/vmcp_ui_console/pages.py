"""Server-rendered HTML: one layout, and a function per page (every value escaped)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

NAV = (("/", "Overview"), ("/traffic", "Traffic"), ("/personas", "Personas"),
       ("/installed", "Installed"), ("/audit", "Audit trail"), ("/tokens", "Tokens"),
       ("/logs", "Log"))
#: the catalog lists a persona's view shows, each with its visibility kind and name key
SEEN_KINDS = (("tools", "tool", "name"), ("prompts", "prompt", "name"),
              ("resources", "resource", "uri"),
              ("resource_templates", "resource_template", "uriTemplate"))
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
.chart{display:inline-block;margin:0 24px 12px 0}.chart svg{background:#fff;
border:1px solid #dde1e8}.chart polyline{fill:none;stroke-width:1.5}
.rate polyline{stroke:#3056d3}.latency polyline{stroke:#a15c00}.said{color:#187a3a}
"""
#: the size of one chart, in pixels
CHART_WIDTH, CHART_HEIGHT = 360, 70


def layout(title: str, path: str, body: str, csrf: str | None) -> str:
    """A whole page: navigation (and a log-out button when signed in), then ``body``."""
    links = "".join(f'<a href="{href}" class="{"here" if href == path else ""}">{name}</a>'
                    for href, name in NAV)
    logout = (f'<form class="inline" method="post" action="/logout">{_csrf(csrf)}'
              '<button id="logout">Sign out</button></form>') if csrf else ""
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)} · vmcp"
            f"</title><style>{STYLE}</style><script src=\"/static/console.js\" defer>"
            "</script></head><body><header><strong>vmcp</strong>"
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


def _button(action: str, csrf: str | None, label: str, **fields: str) -> str:
    """A one-button form posting ``fields`` (and the CSRF token) to ``action``."""
    hidden = "".join(f'<input type=hidden name="{escape(k)}" value="{escape(v)}">'
                     for k, v in fields.items())
    return (f'<form class=inline method=post action="{escape(action)}">{_csrf(csrf)}{hidden}'
            f"<button>{escape(label)}</button></form>")


def _notice(message: str | None, error: str | None) -> str:
    said = f"<p id=said class=said>{escape(message)}</p>" if message else ""
    return said + (f"<p id=error class=bad>{escape(error)}</p>" if error else "")


def overview(status: dict[str, Any], unmounted: Sequence[str], csrf: str | None,
             message: str | None = None, error: str | None = None) -> str:
    """Health, fronts, sessions, every mount with its replicas and circuits (and an unmount
    button), and the configured servers not mounted (with a mount button)."""
    health = status["health"]
    verdict = ("<p id=ready class=ok>Ready</p>" if health["ready"] else
               f'<p id=ready class=bad>Not ready: {escape(", ".join(health["problems"]))}</p>')
    fronts = table("fronts", ["Front", "Listening on"],
                   [(f["name"], f["where"]) for f in status["fronts"]])
    rows = []
    for m in status["mounts"]:
        for index, r in enumerate(m["replicas"] or [{}]):
            cells = "".join(_cell(c) for c in (
                m["id"], m["state"], r.get("id"), r.get("state"), r.get("circuit"),
                r.get("in_flight"), m["tools"], m.get("requests"), m.get("error")))
            action = _button("/mounts/unmount", csrf, "Unmount", id=m["id"]) if index == 0 else ""
            rows.append(f'<tr id="mount-{escape(m["id"])}-{index}">{cells}<td>{action}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("Mount", "State", "Replica", "Replica state",
                                            "Circuit", "In flight", "Tools", "Requests",
                                            "Problem", ""))
    mounts = (f"<table id=mounts><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}"
              "</tbody></table>")
    idle = "".join(f'<li id="unmounted-{escape(m)}">{escape(m)} '
                   f'{_button("/mounts/mount", csrf, "Mount", id=m)}</li>' for m in unmounted)
    spare = (f"<h2>Configured, not mounted</h2><ul id=unmounted>{idle}</ul>" if unmounted
             else "")
    return (f"{_notice(message, error)}{verdict}<p>Sessions: <span id=sessions>"
            f"{status['sessions']}</span></p><h2>Fronts</h2>{fronts}<h2>Mounts</h2>{mounts}"
            f"{spare}")


def _polyline(values: Sequence[float]) -> str:
    top = max(values, default=0.0) or 1.0
    step = CHART_WIDTH / max(len(values) - 1, 1)
    return " ".join(f"{i * step:.1f},{CHART_HEIGHT - 2 - v / top * (CHART_HEIGHT - 4):.1f}"
                    for i, v in enumerate(values))


def _chart(kind: str, mount_id: str, title: str, unit: str, values: Sequence[float]) -> str:
    latest = values[-1] if values else 0.0
    peak = max(values, default=0.0)
    return (f'<div class="chart {kind}"><div>{escape(title)}: <b id="{kind}-'
            f'{escape(mount_id)}">{latest:.2f}</b> {unit} (peak <b id="{kind}-peak-'
            f'{escape(mount_id)}">{peak:.2f}</b>)</div>'
            f'<svg width={CHART_WIDTH} height={CHART_HEIGHT} role=img aria-label="'
            f'{escape(title)} of {escape(mount_id)}"><polyline points="{_polyline(values)}"/>'
            "</svg></div>")


def charts(series: dict[str, Sequence[tuple[float, float]]], interval: float) -> str:
    """The rate and latency charts of every mount (the part the page's script refreshes)."""
    if not series:
        return "<p id=empty>Nothing is mounted.</p>"
    parts = []
    for mount_id, samples in series.items():
        rates, latencies = [s[0] for s in samples], [s[1] for s in samples]
        parts.append(f'<section id="traffic-{escape(mount_id)}"><h2>{escape(mount_id)}</h2>'
                     + _chart("rate", mount_id, "Requests", "per second", rates)
                     + _chart("latency", mount_id, "Mean latency", "ms", latencies)
                     + "</section>")
    seconds = len(next(iter(series.values()))) * interval
    return f"<p>The last {seconds:g} seconds, one point every {interval:g} s.</p>" + "".join(parts)


def traffic(series: dict[str, Sequence[tuple[float, float]]], interval: float) -> str:
    """The traffic page: the charts, kept live by the console's script."""
    return (f'<div id=charts data-refresh-ms="{int(interval * 1000)}">'
            f"{charts(series, interval)}</div>")


def installed(rows: Sequence[dict[str, Any]], csrf: str | None, message: str | None = None,
              error: str | None = None) -> str:
    """The installed servers and versions, with update and rollback buttons."""
    if not rows:
        return _notice(message, error) + (
            "<p id=empty>Nothing is installed (vmcp search, vmcp install).</p>")
    has_previous = {r["name"] for r in rows if r["previous"]}
    body = []
    for r in rows:
        actions = ""
        if r["current"]:
            actions = _button("/installed/update", csrf, "Update", name=r["name"])
            if r["name"] in has_previous:
                actions += " " + _button("/installed/rollback", csrf, "Roll back",
                                         name=r["name"])
        cells = "".join(_cell(c) for c in (
            r["name"], r["version"], "current" if r["current"] else
            ("previous" if r["previous"] else ""), r["method"], r["source"],
            ", ".join(r["mounts"])))
        body.append(f'<tr id="installed-{escape(_slug(r["name"]))}-{escape(r["version"])}">'
                    f"{cells}<td>{actions}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("Server", "Version", "", "Method", "Source",
                                            "Mounted as", ""))
    return (_notice(message, error) + f"<table id=installed><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def audit(records: Sequence[dict[str, Any]]) -> str:
    """The latest audit records, newest first."""
    if not records:
        return "<p id=empty>No audit records (enable <code>[audit]</code>).</p>"
    return table("audit", ["Time", "Caller", "Persona", "Session", "Request", "Mount",
                           "Replica", "Method", "Tool", "Approval", "Outcome", "ms"],
                 [(r.get("time"), r.get("caller"), r.get("persona"), r.get("session"),
                   r.get("request_id"), r.get("mount"), r.get("replica"), r.get("method"),
                   r.get("tool") or r.get("target"), r.get("approval"), r.get("outcome"),
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
                 *(", ".join(entry["sees"].get(server, {}).get(kind, [])) or "-"
                   for kind in ("tools", "prompts", "resources")))
                for server, rules in entry["servers"].items()]
        hidden = f'{_csrf(csrf)}<input type=hidden name=persona value="{escape(name)}">'
        parts.append(
            f'<section id="persona-{escape(name)}"><h2>{escape(name)}</h2>'
            + table(f"servers-{name}", ["Server", "Rules", "Tools it sees",
                                             "Prompts it sees", "Resources it sees"], rows)
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
