"""What the model is shown: ``tools/list`` in ``all`` and ``search`` modes, and search recall.

Six servers available offline (``mcp-server-time`` from PyPI, vmcp's two demo servers and the
three test fixtures) are mounted through ``vmcp start``; the official SDK client reads the
complete tools list in both modes, and runs every query of :data:`QUERIES` through
``vmcp__search_tools``. Run: ``uv run python -m bench.tool_exposure [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client

from bench.procs import PYTHON, REPO, bench_env, gateway_argv, write_config

FIXTURES = REPO / "tests" / "fixtures" / "servers"
SERVERS: dict[str, dict[str, Any]] = {
    "time": {"command": PYTHON, "args": ["-m", "mcp_server_time"]},
    "toolbox": {"command": PYTHON, "args": ["-m", "vmcp.demo.toolbox"]},
    "notes": {"command": PYTHON, "args": ["-m", "vmcp.demo.notes"]},
    "alpha": {"command": PYTHON, "args": [str(FIXTURES / "alpha.py")]},
    "beta": {"command": PYTHON, "args": [str(FIXTURES / "beta.py")]},
    "gamma": {"command": PYTHON, "args": [str(FIXTURES / "gamma.py")]},
}
#: a task as a user would put it -> the tool that does it
QUERIES: dict[str, str] = {
    "what time is it in Tokyo": "time__get_current_time",
    "convert 9am New York time to Paris timezone": "time__convert_time",
    "add two numbers together": "toolbox__add",
    "count the words in a text": "toolbox__word_count",
    "current date in UTC": "toolbox__now_utc",
    "create a note": "notes__add_note",
    "remove a note": "notes__delete_note",
    "check the connection returns my text unchanged": "toolbox__echo",
    "report progress then answer": "alpha__slow",
    "log at every level": "alpha__log_levels",
    "ask the client to sample a model": "alpha__sample",
    "form elicitation": "alpha__elicit_form",
    "URL elicitation": "alpha__elicit_url",
    "list the client's roots": "alpha__roots",
    "was the call cancelled": "alpha__was_cancelled",
    "add a tool at run time": "alpha__add_tool",
    "add a prompt at run time": "alpha__add_prompt",
    "add a resource at run time": "alpha__add_resource",
    "name this server": "beta__whoami",
    "send resources updated for a subscribed URI": "alpha__touch",
    "kill the server mid-call": "alpha__crash",
    "a tool that always fails": "alpha__fail",
    "result carrying _meta": "alpha__with_meta",
    "look something up in gamma": "gamma__lookup",
    "purge gamma": "gamma__purge",
}
RECALL_TARGET = 0.9


def _size(tools: list[dict[str, Any]]) -> dict[str, int]:
    body = json.dumps({"tools": tools}, separators=(",", ":"), ensure_ascii=False)
    size = len(body.encode())
    return {"tools": len(tools), "bytes": size, "tokens": len(body) // 4}


async def _all_tools(session: ClientSession) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    cursor = None
    while True:
        result = await session.list_tools(cursor=cursor) if cursor else await session.list_tools()
        tools += [tool.model_dump(mode="json", by_alias=True, exclude_none=True)
                  for tool in result.tools]
        cursor = result.next_cursor
        if not cursor:
            return tools


async def _measure(root: Path, mode: str) -> dict[str, Any]:
    folder = root / mode
    config = write_config(folder / "vmcp.toml", SERVERS, {"tool_exposure": mode})
    (folder / "home").mkdir(parents=True, exist_ok=True)
    argv = gateway_argv(config)
    env = {**bench_env(folder / "home")}
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    with (folder / "gateway.log").open("w") as errlog:
        async with (stdio_client(params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as session):
            await session.initialize()
            figures: dict[str, Any] = {"list": _size(await _all_tools(session))}
            if mode == "search":
                hits = {}
                for query, wanted in QUERIES.items():
                    found = await session.call_tool("vmcp__search_tools",
                                                    {"query": query, "limit": 5})
                    names = [t["name"] for t in (found.structured_content or {})["tools"]]
                    hits[query] = {"wanted": wanted, "found": names, "hit": wanted in names}
                figures["recall_at_5"] = sum(h["hit"] for h in hits.values()) / len(hits)
                figures["queries"] = hits
            return figures


async def run() -> dict[str, Any]:
    """Both modes' figures."""
    with tempfile.TemporaryDirectory(prefix="vmcp-bench-exposure-") as root:
        return {mode: await _measure(Path(root), mode) for mode in ("all", "search")}


def main() -> None:
    """Print the table (and write the JSON when asked); exit 1 when recall misses its target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args()
    report = asyncio.run(run())
    print(f"{'mode':<8}{'tools':>7}{'bytes':>9}{'tokens':>8}")
    for mode, figures in report.items():
        listed = figures["list"]
        print(f"{mode:<8}{listed['tools']:>7}{listed['bytes']:>9}{listed['tokens']:>8}")
    recall = report["search"]["recall_at_5"]
    verdict = "PASS" if recall >= RECALL_TARGET else "MISS"
    print(f"recall@5 over {len(QUERIES)} queries: {recall:.2f} (target >= {RECALL_TARGET}) "
          f"{verdict}")
    for query, hit in report["search"]["queries"].items():
        if not hit["hit"]:
            print(f"  missed: {query!r} -> {hit['wanted']} (found {hit['found']})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    sys.exit(0 if recall >= RECALL_TARGET else 1)


if __name__ == "__main__":
    main()
