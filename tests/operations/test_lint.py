"""``vmcp tools --lint``: lengths, aliases, rule breaks and collisions of the exposed names."""

from __future__ import annotations

import json

from ops_harness import ALPHA, Home, backend

LONG_PREFIX = "a-very-long-mount-prefix-that-leaves-hardly-any-room-for-names"


def test_lint_reports_aliases_and_rule_breaks(home: Home) -> None:
    home.write({"servers.alpha": backend(ALPHA, prefix=LONG_PREFIX),
                "servers.plain": backend(ALPHA, tools={"echo": {"name": "say.it"}})})
    out = home.cli("tools", "--lint", "--json")
    assert out.exit_code == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] is False and report["budget"] == 64
    names = {(entry["mount"], entry["backend_name"]): entry
             for entry in report["names"] if entry["kind"] == "tool"}
    add = names["alpha", "add"]
    assert add["alias_of"] == f"{LONG_PREFIX}__add" and add["full_length"] == 67
    assert add["length"] <= 64 and add["problems"] == []
    assert names["plain", "echo"]["name"] == "plain__say.it"
    assert names["plain", "echo"]["problems"] == ["breaks the model API rule ^[a-zA-Z0-9_-]{1,64}$"]
    prompts = [entry for entry in report["names"]
               if entry["kind"] == "prompt" and entry["mount"] == "alpha"]
    assert prompts and all("alias_of" in entry for entry in prompts)

    text = home.cli("tools", "--lint")
    assert text.exit_code == 1
    assert f"alias of {LONG_PREFIX}__add (67)" in text.stdout


def test_lint_reports_refused_collisions(home: Home) -> None:
    home.write({"servers.alpha": backend(ALPHA, prefix=""),
                "servers.again": backend(ALPHA, prefix="")})
    out = home.cli("tools", "--lint")
    assert out.exit_code == 1
    assert "failed: mount again:" in out.stderr and "collides with mount 'alpha'" in out.stderr


def test_lint_passes_a_clean_namespace(home: Home) -> None:
    home.write({"servers.alpha": backend(ALPHA)})
    out = home.cli("tools", "--lint")
    assert out.exit_code == 0, out.stderr
    assert "alpha__echo" in out.stdout
