"""``vmcp persona`` and ``vmcp token`` through the real click CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from vmcp.cli import cli, output
from vmcp.persona import PersonaStore


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., Result]:
    """``run(*args, input=None)``: the CLI with a private VMCP_HOME and two servers."""
    config = tmp_path / "vmcp.toml"
    config.write_text('[servers.git]\ncommand = "git-mcp"\n\n[servers.files]\ncommand = "fs"\n',
                      encoding="utf-8")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, ["--config", str(config), *args], input=input,
                             env={"VMCP_HOME": str(tmp_path / "home")})

    return invoke


def personas(tmp_path: Path) -> PersonaStore:
    """The store the CLI writes to."""
    return PersonaStore(tmp_path / "home" / "config" / "personas")


def test_persona_lifecycle(run: Callable[..., Result], tmp_path: Path) -> None:
    assert run("persona", "create", "coder", "--description", "coding").exit_code == 0
    assert run("persona", "coder", "enable", "git", "files").exit_code == 0
    assert run("persona", "coder", "allow-tool", "git", "get_*").exit_code == 0
    assert run("persona", "coder", "deny-tool", "git", "get_secret").exit_code == 0
    assert run("persona", "coder", "deny-prompt", "files", "admin*").exit_code == 0
    assert run("persona", "coder", "read-only", "on", "--server", "files").exit_code == 0
    persona = personas(tmp_path).load("coder")
    assert persona.description == "coding"
    assert persona.servers["git"].allow_tools == ["get_*"]
    assert persona.servers["git"].deny_tools == ["get_secret"]
    assert persona.servers["files"].deny_prompts == ["admin*"]
    assert persona.servers["files"].read_only and not persona.read_only
    assert persona.tool_exposure is None

    assert run("persona", "coder", "tool-exposure", "search").exit_code == 0
    assert run("persona", "coder", "confirm-tool", "git", "push*").exit_code == 0
    persona = personas(tmp_path).load("coder")
    assert persona.tool_exposure == "search" and persona.servers["git"].confirm_tools == ["push*"]
    described = run("persona", "coder").output
    assert "tools shown: search" in described and "confirm tools: push*" in described
    assert run("persona", "coder", "confirm-destructive", "on", "--server", "git").exit_code == 0
    assert run("persona", "coder", "confirm-destructive", "on", "--server", "nope").exit_code != 0
    persona = personas(tmp_path).load("coder")
    assert persona.servers["git"].confirm_destructive and not persona.confirm_destructive
    assert "confirm destructive tools" in run("persona", "coder").output
    assert run("persona", "coder", "confirm-destructive", "on").exit_code == 0
    assert personas(tmp_path).load("coder").confirm_destructive
    assert run("persona", "coder", "tool-exposure", "default").exit_code == 0
    assert personas(tmp_path).load("coder").tool_exposure is None

    shown = run("persona", "show", "coder", "--json")
    assert json.loads(shown.output)["servers"]["git"]["allow_tools"] == ["get_*"]
    assert "tools: allow get_*; deny get_secret" in run("persona", "coder").output
    assert "coder" in run("persona", "list").output

    assert run("persona", "coder", "allow-tool", "git", "get_*", "--remove").exit_code == 0
    assert run("persona", "coder", "disable", "files").exit_code == 0
    persona = personas(tmp_path).load("coder")
    assert list(persona.servers) == ["git"] and persona.servers["git"].allow_tools == []

    # delete asks; "no" keeps the persona
    refused = run("persona", "delete", "coder", input="n\n")
    assert refused.exit_code != 0 and personas(tmp_path).exists("coder")
    assert run("persona", "delete", "coder", input="y\n").exit_code == 0
    assert not personas(tmp_path).exists("coder")
    run("persona", "create", "tmp")
    assert run("persona", "delete", "tmp", "--yes").exit_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (("persona", "ghost", "enable", "git"), "unknown persona 'ghost'"),
    (("persona", "show", "ghost"), "unknown persona 'ghost'"),
    (("persona", "delete", "ghost", "--yes"), "unknown persona 'ghost'"),
    (("persona", "coder", "enable", "nope"), "unknown server 'nope' (configured: git, files)"),
    (("persona", "coder", "disable", "nope"), "unknown server 'nope'"),
    (("persona", "coder", "allow-tool", "files", "x"), "server 'files' is not enabled"),
    (("persona", "create", "coder"), "persona 'coder' already exists"),
    (("persona", "create", "bad name"), "invalid persona name"),
    (("persona", "create", "list"), "is a command name"),
    (("token", "create", "--persona", "ghost"), "unknown persona 'ghost'"),
    (("token", "revoke", "nope"), "unknown token id 'nope'"),
    (("token", "create", "--persona", "coder", "--expires", "soon"), "invalid duration"),
])
def test_errors_are_clear_and_fail(
    run: Callable[..., Result], args: tuple[str, ...], message: str
) -> None:
    assert run("persona", "create", "coder").exit_code == 0
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output


def test_corrupt_persona_is_reported(run: Callable[..., Result], tmp_path: Path) -> None:
    run("persona", "create", "good")
    broken = personas(tmp_path).folder / "broken.json"
    broken.write_text("{", encoding="utf-8")
    listed = run("persona", "list")
    assert listed.exit_code == 1
    assert "good" in listed.output and f"error: {broken}: not valid JSON" in listed.output
    shown = run("persona", "show", "broken")
    assert shown.exit_code != 0 and "not valid JSON" in shown.output


def test_tokens(run: Callable[..., Result], tmp_path: Path) -> None:
    run("persona", "create", "coder")
    created = run("token", "create", "--persona", "coder", "--name", "ci", "--expires", "30d")
    assert created.exit_code == 0
    token = created.output.splitlines()[0]
    assert token.startswith("vmcp_")
    stored = (tmp_path / "home" / "config" / "tokens.json")
    assert token not in stored.read_text(encoding="utf-8")  # only the hash is kept
    assert stored.stat().st_mode & 0o777 == 0o600
    listed = json.loads(run("token", "list", "--json").output)
    assert [(t["persona"], t["name"], t["expired"]) for t in listed] == [("coder", "ci", False)]
    assert "sha256" not in listed[0]
    assert run("token", "revoke", listed[0]["id"]).exit_code == 0
    assert json.loads(run("token", "list", "--json").output) == []


def test_persona_and_token_lists_have_headers_on_a_terminal(
        run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    run("persona", "create", "coder", "--description", "coding agent")
    run("persona", "coder", "enable", "git")
    run("token", "create", "--persona", "coder", "--name", "ci")
    piped = run("persona", "list").output.splitlines()
    assert piped[0].split() == ["coder", "git", "coding", "agent"]
    row = run("token", "list").output.splitlines()[0].split()
    assert (row[1], row[3], row[4]) == ("coder", "valid", "ci")
    monkeypatch.setattr(output, "_on_terminal", lambda: True)
    assert run("persona", "list").output.splitlines()[0].split() == [
        "NAME", "SERVERS", "DESCRIPTION"]
    assert run("token", "list").output.splitlines()[0].split() == [
        "ID", "PERSONA", "EXPIRES", "STATE", "NAME"]
