"""State files changed by several CLI processes at once: no change is lost.

Each command reads its state file, changes it and writes it back; without a lock between
processes, two commands working from the same old copy lose one change (a revoked token
came back, a created one was never stored). These run real ``vmcp`` processes at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from vmcp.auth.tokens import TokenStore, hash_token
from vmcp.persona import PersonaStore

RACERS = 8


def run_all(commands: list[list[str]], home: Path) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at once, then wait for all of them."""
    env = {**os.environ, "VMCP_HOME": str(home)}
    processes = [subprocess.Popen([sys.executable, "-m", "vmcp", *args], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for args in commands]
    done = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def test_revokes_racing_creates_are_all_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    PersonaStore(home / "config" / "personas").create("coder")
    store = TokenStore(home / "config" / "tokens.json")
    doomed = [store.create("coder", None, f"old {n}")[0].id for n in range(RACERS)]
    commands = [["token", "revoke", token_id] for token_id in doomed]
    commands += [["token", "create", "--persona", "coder", "--name", f"new {n}"]
                 for n in range(RACERS)]
    results = run_all(commands, home)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    printed = [r.stdout.splitlines()[0] for r in results[RACERS:]]
    kept = {record.sha256: record for record in store.load()}
    assert not any(record.id in doomed for record in kept.values())  # every revoke held
    assert all(hash_token(token) in kept for token in printed)  # every created token works
    assert len(kept) == RACERS


def test_changes_to_one_persona_racing_are_all_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = PersonaStore(home / "config" / "personas")
    store.create("coder")
    store.update("coder", lambda persona: persona.enable("toolbox"))  # a built-in demo mount
    patterns = [f"p{n}*" for n in range(RACERS)]
    results = run_all([["persona", "coder", "deny-tool", "toolbox", pattern]
                       for pattern in patterns], home)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    saved = json.loads((home / "config" / "personas" / "coder.json").read_text())
    assert sorted(saved["servers"]["toolbox"]["deny_tools"]) == patterns, saved
