"""The issue's targets checked against one run's figures, and the printed table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Results = dict[str, Any]


def _ok(results: Results, *path: str) -> Any:
    """The nested value at ``path`` when that scenario produced numbers, else None."""
    node: Any = results
    for key in path:
        if not isinstance(node, dict) or node.get("status") in ("skipped", "error"):
            return None
        node = node.get(key)
    return node


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 3)


def targets(results: Results) -> list[dict[str, Any]]:
    """Each target of the issue: the measured value, its limit, pass/miss (None: not measured)."""
    s = results.get("scenarios", {})
    stdio = _ok(s, "stdio", "targets") or {}
    added = _ok(s, "stdio", "added_p50_us") or {}
    http8 = _ok(s, "http", "levels", "8") or {}
    http32 = _ok(s, "http", "levels", "32") or {}
    modern32 = _ok(s, "modern", "levels", "32") or {}
    lists = _ok(s, "tools_list", "targets") or {}
    sessions = _ok(s, "memory", "per_session") or {}
    idle = sessions.get("idle", {})
    active = sessions.get("active", {})
    returns = [k.get("after_vs_start") for k in (idle, active) if k.get("after_vs_start")]
    start = _ok(s, "startup", "targets") or {}
    warm = _ok(s, "warmstart", "targets") or {}
    crowd = _ok(s, "overload", "levels") or {}
    soak = _ok(s, "soak") or {}
    flat = soak.get("flat", {})
    fleet = _ok(s, "workers", "levels") or {}
    cores = _ok(s, "workers", "machine", "cpus")
    top = crowd.get(str(_ok(s, "overload", "top_clients")), {})
    direct_tput = stdio.get("direct", {}).get("calls_per_s")
    http_ratios = {clients: _ratio(level.get("gateway", {}).get("calls_per_s"),
                                   level.get("direct", {}).get("calls_per_s"))
                   for clients, level in ((8, http8), (32, http32))}
    low, high = http_ratios.values()
    rising = "-" if low is None or high is None else "yes" if high > low else "no"

    def made(name: str, value: float | None, limit: float, better: str, unit: str,
             detail: str) -> dict[str, Any]:
        passed = None
        if value is not None:
            passed = value <= limit if better == "<=" else value >= limit
        return {"target": name, "value": value, "limit": limit, "better": better,
                "unit": unit, "pass": passed, "detail": detail if value is not None else ""}

    relay_added, gateway_added = added.get("relay"), added.get("gateway")
    fast_added = added.get("relay_fast")
    fast_tput = stdio.get("relay_fast", {}).get("calls_per_s")
    together = _ratio(start.get("gateway_all", {}).get("seconds"),
                      start.get("direct_all", {}).get("seconds"))
    cold_all = _ratio(((_ok(s, "startup", "cold") or {}).get("gateway_all") or {}).get("seconds"),
                      start.get("direct", {}).get("seconds"))
    return [
        made("stdio added p50 latency vs relay floor", _ratio(gateway_added, relay_added),
             2.0, "<=", "x",
             f"gateway +{gateway_added} us, relay +{relay_added} us over direct"),
        made("stdio pipelined throughput vs direct",
             _ratio(stdio.get("gateway", {}).get("calls_per_s"), direct_tput), 0.5, ">=", "x",
             "relay floor reaches "
             f"{_ratio(stdio.get('relay', {}).get('calls_per_s'), direct_tput)}x of direct"),
        made("stdio added p50 latency vs the orjson + uvloop relay floor",
             _ratio(gateway_added, fast_added), 1.1, "<=", "x",
             f"gateway +{gateway_added} us, orjson + uvloop relay +{fast_added} us over direct"),
        made("stdio pipelined throughput vs the orjson + uvloop relay floor",
             _ratio(stdio.get("gateway", {}).get("calls_per_s"), fast_tput), 1.0, ">=", "x",
             f"the floor reaches {_ratio(fast_tput, direct_tput)}x of direct"),
        made("http throughput at 32 clients vs direct HTTP",
             _ratio(http32.get("gateway", {}).get("calls_per_s"),
                    http32.get("direct", {}).get("calls_per_s")), 0.5, ">=", "x",
             "gateway answering SSE (what MCP clients ask for)"),
        *[made(f"http throughput at {clients} clients vs direct HTTP (issue 22)",
               http_ratios[clients], 0.75, ">=", "x",
               _machine_share(level) + (f"; rising from 8 clients: {rising}" if clients == 32
                                        else ""))
          for clients, level in ((8, http8), (32, http32))],
        made("modern stateless tools/call over HTTP at 32 clients vs direct",
             _ratio(modern32.get("gateway", {}).get("calls_per_s"),
                    modern32.get("direct", {}).get("calls_per_s")), 0.75, ">=", "x",
             "2026-07-28 requests, no session; " + _machine_share(modern32)),
        made("2 workers vs 1 worker, modern tools/call over HTTP (best of "
             f"{', '.join(fleet) or 'no'} clients)",
             max((level.get("2", {}).get("vs_one_worker") for level in fleet.values()),
                 default=None), 1.6, ">=", "x",
             f"{cores} CPUs shared with the client processes; "
             + _worker_headroom(fleet) + "; 4 workers: "
             + ", ".join(f"{c} clients {level.get('4', {}).get('vs_one_worker', '-')}x"
                         for c, level in fleet.items())),
        made(f"warm tools/list, {_ok(s, 'tools_list', 'tools')} tools in "
             f"{_ok(s, 'tools_list', 'mounts')} mounts, p50 at the client",
             _ms(lists.get("warm", {}).get("p50_us")), 5.0, "<=", "ms",
             f"all {lists.get('warm', {}).get('pages')} pages at the default page size"),
        made("gateway memory per idle HTTP session", idle.get("per_session_kib"), 50.0, "<=",
             "KiB", f"{sessions.get('sessions')} sessions"),
        made(f"gateway memory per idle HTTP session at {sessions.get('sessions')} sessions",
             idle.get("per_session_kib"), 8.0, "<=", "KiB",
             f"RSS {idle.get('rss_start_kib')} -> {idle.get('rss_loaded_kib')} KiB"),
        made(f"gateway memory per active HTTP session at {sessions.get('sessions')} sessions",
             active.get("per_session_kib"), 20.0, "<=", "KiB",
             f"each made {sessions.get('calls_per_active_session')} calls and holds its GET "
             f"stream; RSS {active.get('rss_start_kib')} -> {active.get('rss_loaded_kib')} KiB"),
        made("gateway RSS once the HTTP sessions are gone vs its start (the worse of idle, active)",
             max(returns, default=None), 1.1, "<=", "x",
             f"idle {idle.get('after_vs_start')}x, active {active.get('after_vs_start')}x"),
        made(f"http throughput at {_ok(s, 'overload', 'top_clients')} closed-loop clients "
             "vs the peak level", _ok(s, "overload", "top_vs_peak"), 0.8, ">=", "x",
             f"peak {_ok(s, 'overload', 'peak_calls_per_s')} calls/s"),
        made(f"requests over 1 s at {_ok(s, 'overload', 'top_clients')} closed-loop clients",
             top.get("over_1s"), 0, "<=", "",
             f"slowest {top.get('worst_ms')} ms, {top.get('failed')} failed; session openings "
             f"(2 requests) over 1 s: {top.get('openings_over_1s')}, slowest "
             f"{top.get('worst_opening_ms')} ms"),
        made(f"start-up with {_ok(s, 'startup', 'mounts')} stdio mounts vs slowest single backend "
             "(warm)",
             _ratio(start.get("gateway_all", {}).get("seconds"),
                    start.get("direct", {}).get("seconds")), 1.2, "<=", "x",
             f"warm; cold {cold_all}x; gateway alone "
             f"{start.get('gateway_empty', {}).get('seconds')} s; "
             f"{together}x of the backends started together without it"),
        made(f"gateway's own start-up with {_ok(s, 'startup', 'mounts')} mounts, up to its "
             "first backend's spawn (warm: the same configuration as the last start)",
             _ok(s, "startup", "own_ms"), 80.0, "<=", "ms",
             f"cold (a new home) {_ok(s, 'startup', 'own_cold_ms')} ms, "
             f"{(_ok(s, 'startup', 'imports') or {}).get('imports_ms')} ms of that imports "
             "(-X importtime, another run)"),
        made(f"first tools/list with {_ok(s, 'warmstart', 'mounts')} slow mounts, every mount's "
             "tools, from spawning vmcp start (front snapshot)", _ok(s, "warmstart", "warm_ms"),
             100.0, "<=", "ms", f"spawn to answer: warm catalog alone "
             f"{warm.get('catalog', {}).get('seconds')} s, cold "
             f"{warm.get('cold', {}).get('seconds')} s, no mount "
             f"{warm.get('empty', {}).get('seconds')} s"),
        made(f"first tools/list with {_ok(s, 'warmstart', 'mounts')} slow mounts, warm catalog "
             "without the snapshot, over the gateway's own start",
             _ok(s, "warmstart", "catalog_added_ms"), 100.0, "<=", "ms",
             f"spawn to answer: {warm.get('catalog', {}).get('seconds')} s"),
        *[made(f"soak over HTTP ({soak.get('minutes')} min): {what}, median of the last "
               "third vs the first third after the warm-up", flat.get(key, {}).get("ratio"),
               1.1, "<=", "x",
               f"{flat.get(key, {}).get('first')} -> {flat.get(key, {}).get('last')}; "
               f"{soak.get('opened')} sessions opened, {soak.get('calls_per_s')} calls/s, "
               f"failures: {soak.get('failures') or 'none'}")
          for key, what in (("rss_kib", "RSS"), ("fds", "open file descriptors"),
                            ("tasks", "event-loop tasks"))],
    ]


def _machine_share(level: dict[str, Any]) -> str:
    """What each side of an HTTP level took of the machine's CPU per call: the gateway and
    its backend against the direct server, each with its clients' share (one machine runs
    them all, so what the clients and the backend take is not the gateway's to use)."""
    gateway, direct = level.get("gateway", {}), level.get("direct", {})
    return (f"CPU us/call: gateway {gateway.get('cpu_us_per_call')} + its backend "
            f"{gateway.get('backend_cpu_us_per_call')} + clients "
            f"{gateway.get('client_cpu_us_per_call')}, direct {direct.get('cpu_us_per_call')} "
            f"+ clients {direct.get('client_cpu_us_per_call')}")


def _worker_headroom(fleet: dict[str, Any]) -> str:
    """How busy one worker kept the whole machine at each level, and so the most that more
    workers could add there: the CPU time it left idle, at best."""
    parts = []
    for clients, level in fleet.items():
        busy = level.get("1", {}).get("machine_busy")
        if busy:
            parts.append(f"{clients} clients {busy:.0%} (at most {1 / busy:.2f}x)")
    if not parts:
        return "machine busy with 1 worker: not measured"
    return "machine busy with 1 worker: " + ", ".join(parts)


def _ms(micros: float | None) -> float | None:
    return None if micros is None else round(micros / 1000, 3)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [headers, *[[_fmt(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=True))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return ["  " + line for line in lines]


def _section(title: str, scenario: dict[str, Any] | None,
             body: Callable[[dict[str, Any]], list[str]]) -> list[str]:
    if scenario is None:
        return []
    status = scenario.get("status")
    if status == "skipped":
        return [f"{title}: skipped ({scenario.get('reason')})", ""]
    if status == "error":
        return [f"{title}: ERROR {scenario.get('error')}", ""]
    return [title, *body(scenario), ""]


#: rows of the soak's sample table at most (evenly spaced; every sample is in the JSON)
SOAK_ROWS = 16


def counted(r: dict[str, Any]) -> list[str]:
    """Instructions per call of each target, and the gateway's against its comparison."""
    stdio = r["stdio"]
    rows = [[f"stdio sequential / {name}", stdio[name], ""] for name in ("relay_fast", "gateway")]
    rows[-1][2] = f"{r['stdio_ratio']}x the relay floor"
    for era, title in (("http", "HTTP"), ("modern", "2026-07-28 over HTTP")):
        if era in r:
            rows += [[f"{title}, 32 clients / direct", r[era]["direct"], ""],
                     [f"{title}, 32 clients / gateway", r[era]["gateway"],
                      f"{r[era]['ratio']}x direct"]]
    return [f"  {r['calls']} calls per target", *_table(["target", "instructions/call", ""],
                                                        rows)]


def soak_table(r: dict[str, Any]) -> list[str]:
    """The soak's load, a table of its samples, and the flatness of each resource."""
    samples = r["samples"]
    step = max(1, -(-len(samples) // SOAK_ROWS))
    shown = samples[::step]
    if samples and shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    lines = [f"  {r['sessions_kept']} sessions kept, {r['new_sessions_per_s']} new/s (each "
             f"living {r['session_lifetime_s']:g} s, a call every {r['call_interval_s']:g} s), "
             f"half DELETEd, half abandoned to the {r['idle_timeout_s']:g} s idle timeout "
             f"(keep-alive {r['keepalive_s']:g} s); warm-up {r['warmup_s']} s",
             f"  opened {r['opened']}, closed {r['closed']}, abandoned {r['abandoned']}, "
             f"{r['calls']} calls ({r['calls_per_s']}/s), failures: {r['failures'] or 'none'}"]
    lines += _table(["t s", "RSS KiB", "fds", "tasks", "sessions (gateway)",
                     "sessions (client)", "calls"],
                    [[x["t_s"], x["rss_kib"], x["fds"], x["tasks"], x["sessions"], x["kept"],
                      x["calls"]] for x in shown])
    lines += _table(["after warm-up", "first third", "last third", "ratio"],
                    [[key, f["first"], f["last"], f["ratio"]] for key, f in r["flat"].items()])
    if r.get("plot"):
        lines.append(f"  plot: {r['plot']}")
    return lines


def render(results: Results) -> str:
    """The human-readable report: one table per scenario, then the targets."""
    s = results["scenarios"]
    meta = results["meta"]
    out = [f"vmcp bench ({meta['mode']}, {meta['reps']} repetitions, medians; {meta['cpus']} "
           f"CPUs; 1-min load average {meta['loadavg_before'][0]} before, "
           f"{meta['loadavg_after'][0]} after)", ""]

    def stdio(r: dict[str, Any]) -> list[str]:
        return _table(["stdio -> stdio", "p50 us", "p99 us", "mean us", "added p50 us",
                       "cpu us/call", "pipelined calls/s", "cpu us/call"], [
            [name, t["p50_us"], t["p99_us"], t["mean_us"], r["added_p50_us"].get(name, 0.0),
             t["cpu_us_per_call"], t["calls_per_s"], t["cpu_us_per_pipelined_call"]]
            for name, t in r["targets"].items()])

    def http(r: dict[str, Any]) -> list[str]:
        rows = [[f"{clients} clients / {name}", t["calls_per_s"], t["p50_us"], t["p99_us"],
                 t["cpu_us_per_call"], t.get("backend_cpu_us_per_call"),
                 t.get("client_cpu_us_per_call")]
                for clients, level in r["levels"].items() for name, t in level.items()]
        return _table(["http -> stdio", "calls/s", "p50 us", "p99 us", "server cpu us/call",
                       "its backend's", "the clients'"], rows)

    def crowd(r: dict[str, Any]) -> list[str]:
        return _table(["closed-loop clients", "calls/s", "refusals/s", "failed", "over 1 s",
                       "worst ms", "openings over 1 s", "worst opening ms", "p50 us", "p99 us",
                       "sessions", "level calls/s", "gateway cpu/s", "generator cpu/s"], [
            [clients, t["calls_per_s"], t["refusals_per_s"], t["failed"], t["over_1s"],
             t["worst_ms"], t["openings_over_1s"], t["worst_opening_ms"], t["p50_us"],
             t["p99_us"], t["sessions_opened"],
             t["level_calls_per_s"], t["gateway_cpu_per_s"], t["generator_cpu_per_s"]]
            for clients, t in r["levels"].items()])

    def lists(r: dict[str, Any]) -> list[str]:
        return _table([f"tools/list {r['tools']} tools", "pages", "p50 ms", "p99 ms"], [
            [name, t["pages"], _ms(t["p50_us"]), _ms(t["p99_us"])]
            for name, t in r["targets"].items()])

    def memory(r: dict[str, Any]) -> list[str]:
        mount = r["per_mount"]
        session = r["per_session"]
        rows = [[f"per mount ({mount['tools_per_mount']} tools)", mount["per_mount_kib"]],
                ["gateway with 1 mount", mount["rss_one_mount_kib"]]]
        if session.get("status") == "ok":
            for kind in ("idle", "active"):
                figures = session[kind]
                rows += [[f"per {kind} HTTP session ({session['sessions']} open)",
                          figures["per_session_kib"]],
                         [f"  start / {session['sessions']} {kind} open / all gone",
                          f"{figures['rss_start_kib']} / {figures['rss_loaded_kib']} / "
                          f"{figures['rss_after_kib']} ({figures['after_vs_start']}x)"]]
        else:
            rows.append(["per idle HTTP session", f"skipped: {session.get('reason')}"])
        return _table(["gateway RSS", "KiB"], rows)

    def startup(r: dict[str, Any]) -> list[str]:
        lines = _table([f"start-up, {r['mounts']} mounts", "seconds"],
                       [[name, t["seconds"]] for name, t in r["targets"].items()]
                       + [[f"{name} (cold)", t["seconds"]]
                          for name, t in r.get("cold", {}).items()])
        lines.append(f"  the gateway's own time before its first backend is spawned: "
                     f"{r['own_ms']} ms warm, {r.get('own_cold_ms')} ms cold "
                     f"(runs, the first cold: {', '.join(map(str, r['own_runs_ms']))})")
        imports = r["imports"]
        if imports.get("status") == "ok":
            lines.append(f"  -X importtime: {imports['imports_ms']} ms in {imports['modules']}"
                         " imports; the heaviest at the top level:")
            lines += _table(["module", "ms (cumulative)"],
                            [[i["module"], i["ms"]] for i in imports["top"]])
        return lines

    def tracing(r: dict[str, Any]) -> list[str]:
        added = r["added_by_tracing"]
        rows = [[name, t["p50_us"], t["p99_us"], t["cpu_us_per_call"], t["calls_per_s"],
                 t["cpu_us_per_pipelined_call"]] for name, t in r["targets"].items()]
        rows.append(["added by tracing", added["p50_us"], "", added["cpu_us_per_call"],
                     f"{added['pipelined_throughput_ratio']}x", ""])
        return _table(["gateway", "p50 us", "p99 us", "cpu us/call", "pipelined calls/s",
                       "cpu us/call"], rows)

    out += _section("stdio front -> stdio backend", s.get("stdio"), stdio)
    out += _section("HTTP front -> stdio backend", s.get("http"), http)
    out += _section("2026-07-28 over HTTP (stateless)", s.get("modern"), http)
    out += _section("HTTP front under overload", s.get("overload"), crowd)

    def fleet(r: dict[str, Any]) -> list[str]:
        m = r["machine"]
        rows = [[f"{clients} clients / {name} worker(s)", t["calls_per_s"],
                 f"{t['vs_one_worker']}x", t["p50_us"], t["p99_us"],
                 f"{t['machine_busy']:.0%}" if t.get("machine_busy") else "-"]
                for clients, level in r["levels"].items() for name, t in level.items()]
        return [f"  machine: {m['cpus']} CPUs ({m['cpu_model']}), load {m['loadavg'][0]}, "
                f"{m['client_processes']} client processes",
                *_table(["workers, modern tools/call", "calls/s", "vs 1", "p50 us", "p99 us",
                         "machine busy"], rows)]

    out += _section("vmcp start --workers N, 2026-07-28 over HTTP", s.get("workers"), fleet)
    out += _section("tools/list", s.get("tools_list"), lists)
    out += _section("memory", s.get("memory"), memory)
    out += _section("start-up", s.get("startup"), startup)
    out += _section("warm start", s.get("warmstart"), lambda r: _table(
        [f"first tools/list, {r['mounts']} mounts", "seconds"],
        [[name, t["seconds"]] for name, t in r["targets"].items()]))
    out += _section("tracing (vmcp-trace-otel exporting every span), stdio -> stdio",
                    s.get("tracing"), tracing)
    out += _section("soak (HTTP front)", s.get("soak"), soak_table)
    out += _section("instructions per call (callgrind; the kernel's work not counted)",
                    s.get("instructions"), counted)
    out.append("targets")
    rows = []
    for t in results["targets"]:
        verdict = {True: "PASS", False: "MISS", None: "not run"}[t["pass"]]
        rows.append([t["target"], f"{_fmt(t['value'])} {t['unit']}",
                     f"{t['better']} {_fmt(t['limit'])} {t['unit']}", verdict, t["detail"]])
    out += _table(["target", "measured", "limit", "", "detail"], rows)
    return "\n".join(out)
