"""``vmcp config show`` / ``config path`` and how a bad configuration is reported."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from vmcp.cli import cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty VMCP_HOME, so the user's real configuration is never read."""
    monkeypatch.setenv("VMCP_HOME", str(tmp_path))
    monkeypatch.delenv("VMCP_CONFIG", raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return exit code, stdout and stderr."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def write_config(home: Path, text: str) -> Path:
    """Write ``$VMCP_HOME/config/vmcp.toml``."""
    path = home / "config" / "vmcp.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_show_works_with_no_file(home: Path) -> None:
    code, out, _ = invoke("config", "show")
    assert code == 0
    shown = tomllib.loads(out)
    assert shown["cache"]["backend"] == "memory"
    assert shown["gateway"]["separator"] == "__"
    assert "toolbox" in shown["servers"]  # the shipped demo mount table
    assert "id" not in shown["servers"]["toolbox"]
    assert not (home / "config").exists()  # showing never writes


def test_show_json_matches_toml(home: Path) -> None:
    _, as_toml, _ = invoke("config", "show")
    code, as_json, _ = invoke("config", "show", "--json")
    assert code == 0
    assert json.loads(as_json)["cache"] == tomllib.loads(as_toml)["cache"]


def test_show_masks_env_and_headers_unless_asked(home: Path) -> None:
    write_config(
        home,
        """
        [servers.github]
        command = "gh-mcp"
        env = { GITHUB_TOKEN = "ghp_secret" }

        [servers.remote]
        transport = "http"
        url = "https://example.com/mcp"
        headers = { Authorization = "Bearer hunter2" }
        """,
    )
    _, out, _ = invoke("config", "show")
    assert "ghp_secret" not in out and "hunter2" not in out
    shown = tomllib.loads(out)
    assert shown["servers"]["github"]["env"] == {"GITHUB_TOKEN": "***"}
    assert shown["servers"]["remote"]["headers"] == {"Authorization": "***"}

    _, out, _ = invoke("config", "show", "--json")
    assert "ghp_secret" not in out

    _, out, _ = invoke("config", "show", "--show-secrets")
    assert tomllib.loads(out)["servers"]["github"]["env"] == {"GITHUB_TOKEN": "ghp_secret"}


def test_show_masks_an_oauth_client_secret(home: Path) -> None:
    write_config(
        home,
        """
        [servers.crm]
        transport = "http"
        url = "https://example.com/mcp"

        [servers.crm.oauth]
        grants = "shared"
        client_id = "vmcp"
        client_secret = "s3cret-value"
        """,
    )
    _, out, _ = invoke("config", "show")
    assert "s3cret-value" not in out
    assert tomllib.loads(out)["servers"]["crm"]["oauth"]["client_id"] == "vmcp"
    _, out, _ = invoke("config", "show", "--show-secrets")
    assert tomllib.loads(out)["servers"]["crm"]["oauth"]["client_secret"] == "s3cret-value"


def test_show_output_reads_back_as_the_same_config(home: Path) -> None:
    path = write_config(home, '[gateway]\nname = "edge"\n\n[servers.one]\ncommand = "srv"\n')
    _, out, _ = invoke("config", "show", "--show-secrets")
    path.write_text(out)
    _, again, _ = invoke("config", "show", "--show-secrets")
    assert again == out
    assert tomllib.loads(again)["gateway"]["name"] == "edge"


def test_bad_file_gives_located_messages_and_exit_2(home: Path) -> None:
    text = '[gateway]\npage_size = 0\n\n[servers.github]\nargs = ["x"]\n'
    path = write_config(home, text)
    code, out, err = invoke("config", "show")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert (f"error: {path}: line 4: servers.github.command: field required for transport "
            "'stdio'") in lines
    assert any(line.startswith(f"error: {path}: line 2: gateway.page_size: ") for line in lines)
    assert len(lines) == 2
    assert path.read_text() == text  # nothing overwritten


def test_invalid_toml_exits_2(home: Path) -> None:
    path = write_config(home, "[gateway\n")
    code, _, err = invoke("config", "show")
    assert code == 2
    assert err.startswith(f"error: {path}: not valid TOML")


def test_config_option_wins_over_home(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('[gateway]\nname = "other"\n')
    code, out, _ = invoke("--config", str(other), "config", "show")
    assert code == 0
    assert tomllib.loads(out)["gateway"]["name"] == "other"
    _, out, _ = invoke("--config", str(other), "config", "path")
    assert out.splitlines()[0] == f"{other} (exists)"


def test_missing_config_option_file_exits_2(home: Path, tmp_path: Path) -> None:
    code, _, err = invoke("--config", str(tmp_path / "nope.toml"), "config", "show")
    assert code == 2
    assert "cannot read" in err


def test_path_reports_whether_files_exist(home: Path) -> None:
    code, out, _ = invoke("config", "path")
    assert code == 0
    config_line, servers_line = out.splitlines()
    assert config_line == f"{home / 'config' / 'vmcp.toml'} (missing; built-in defaults apply)"
    assert servers_line == f"{home / 'config' / 'servers.toml'} (missing; optional)"
    write_config(home, "")
    _, out, _ = invoke("config", "path")
    assert out.splitlines()[0].endswith("vmcp.toml (exists)")
