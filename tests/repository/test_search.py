"""Search over a synced corpus of sixty manifests from a real git repository, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from repo_helpers import git, run_cli, server_json

from vmcp.cli import output

TOPICS = ["calendar", "database", "email", "files", "github", "maps", "music", "notes",
          "slack", "translate"]


def build_corpus(repo: Path) -> None:
    """Sixty servers: fifty fillers plus ten whose text places 'weather' differently."""
    for n in range(50):
        topic = TOPICS[n % len(TOPICS)]
        path = repo / "servers" / f"{topic}-{n}" / "server.json"
        path.parent.mkdir(parents=True)
        path.write_text(server_json(f"io.example/{topic}-{n}", f"Work with {topic} number {n}"))
    special = {
        "weather": {"description": "Forecasts and current conditions", "title": "Weather"},
        "forecast-hub": {"description": "Hub for many data feeds", "tags": ["weather", "climate"]},
        "travel-planner": {"description": "Plan trips; checks the weather on the way"},
        "weather-alerts": {"description": "Severe weather alerts by region"},
        "skyline": {"description": "City skyline photos", "title": "Skyline weather camera"},
    }
    for short, extra in special.items():
        path = repo / "servers" / short / "server.json"
        path.parent.mkdir(parents=True)
        path.write_text(server_json(f"io.example/{short}", **extra))
    older = repo / "servers" / "weather-old" / "server.json"
    older.parent.mkdir(parents=True)
    older.write_text(server_json("io.example/weather", "Forecasts (old)", version="0.9.0"))
    for n in range(4):
        path = repo / "servers" / f"misc-{n}" / "server.json"
        path.parent.mkdir(parents=True)
        path.write_text(server_json(f"io.example/misc-{n}", "Miscellaneous helper tools"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "corpus")


@pytest.fixture
def corpus(home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "corpus"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    build_corpus(repo)
    run_cli("repo", "add", str(repo), "--name", "corpus")
    assert "corpus: 60 manifests" in run_cli("repo", "sync").output


def search(*words: str) -> list[str]:
    hits = json.loads(run_cli("search", *words, "--json", "--limit", "50").output)
    return [h["name"].split("/")[-1] for h in hits]


def test_name_beats_title_beats_tags_beats_description(corpus: None) -> None:
    found = search("weather")
    assert found[:2] == ["weather", "weather-alerts"]
    assert found.index("skyline") < found.index("forecast-hub") < found.index("travel-planner")
    assert len(found) == 5  # the old version of 'weather' is not listed twice


def test_every_word_must_match_else_any_word(corpus: None) -> None:
    assert search("severe", "alerts") == ["weather-alerts"]
    either = search("skyline", "calendar")
    assert "skyline" in either and "calendar-0" in either


def test_prefixes_limits_and_table_output(corpus: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert search("transl")[0].startswith("translate-")
    assert len(json.loads(run_cli("search", "work", "--json", "--limit", "7").output)) == 7
    table = run_cli("search", "weather").output.splitlines()
    assert table[0].split()[:3] == ["io.example/weather", "1.0.0", "corpus"]
    monkeypatch.setattr(output, "_on_terminal", lambda: True)
    shown = run_cli("search", "weather").output.splitlines()
    assert shown[0].split() == ["NAME", "VERSION", "SOURCE", "DESCRIPTION"]
    assert shown[1].split()[:3] == ["io.example/weather", "1.0.0", "corpus"]
    assert "no match" in run_cli("search", "zzzz").output


def test_show_prints_manifest_methods_and_versions(corpus: None) -> None:
    out = run_cli("show", "weather").output
    assert out.startswith("io.example/weather 1.0.0")
    assert "versions:    1.0.0, 0.9.0" in out
    assert "remote  streamable-http https://weather.example/mcp" in out
    assert json.loads(run_cli("show", "io.example/weather@0.9.0", "--json").output)[
        "description"] == "Forecasts (old)"
    missing = run_cli("show", "nothing", ok=False)
    assert missing.exit_code == 1 and "no server 'nothing'" in missing.output
