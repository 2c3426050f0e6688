"""The persona store: atomic JSON files, corrupt files reported, never dropped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vmcp.persona import (
    Persona,
    PersonaCorrupt,
    PersonaError,
    PersonaExists,
    PersonaNotFound,
    PersonaStore,
)


@pytest.fixture
def store(tmp_path: Path) -> PersonaStore:
    """A store in an empty folder."""
    return PersonaStore(tmp_path / "personas")


def test_create_load_update_delete(store: PersonaStore) -> None:
    created = store.create("coder", "coding agent")
    assert created.servers == {} and not created.read_only  # a new persona has no access
    assert store.load("coder") == created
    with pytest.raises(PersonaExists):
        store.create("coder")

    changed = store.update("coder", lambda p: p.enable("git"))
    assert list(changed.servers) == ["git"]
    assert changed.modified >= created.modified
    assert store.load("coder").servers == changed.servers
    assert store.names() == ["coder"]
    # Writes are atomic: nothing but the persona files (and their locks) is left behind.
    assert sorted(p.name for p in store.folder.iterdir()) == [".coder.json.lock", "coder.json"]

    store.delete("coder")
    with pytest.raises(PersonaNotFound, match="unknown persona 'coder'"):
        store.load("coder")
    with pytest.raises(PersonaNotFound):
        store.delete("coder")


@pytest.mark.parametrize("name", ["", "a b", "x" * 51, "../etc", "é"])
def test_names_are_checked(store: PersonaStore, name: str) -> None:
    with pytest.raises(PersonaError, match="invalid persona name"):
        store.create(name)


def test_corrupt_files_are_reported_not_dropped(store: PersonaStore) -> None:
    store.create("good")
    store.folder.joinpath("broken.json").write_text("{not json", encoding="utf-8")
    store.folder.joinpath("wrong.json").write_text(
        json.dumps({"name": "wrong", "servers": {"BAD ID": {}}}), encoding="utf-8")
    store.folder.joinpath("other.json").write_text(
        Persona(name="else").model_dump_json(), encoding="utf-8")

    personas, problems = store.load_all()
    assert list(personas) == ["good"]
    reported = {p.path.name: p.problems for p in problems}
    assert set(reported) == {"broken.json", "wrong.json", "other.json"}
    assert "not valid JSON" in reported["broken.json"][0]
    assert "not a valid server id" in reported["wrong.json"][0]
    assert reported["other.json"] == ["the file names persona 'else'"]
    with pytest.raises(PersonaCorrupt) as corrupt:
        store.load("broken")
    assert str(store.folder / "broken.json") in str(corrupt.value)
    # The broken file is still there, untouched.
    assert store.folder.joinpath("broken.json").read_text(encoding="utf-8") == "{not json"


def test_fingerprint_changes_with_every_write(store: PersonaStore) -> None:
    assert store.fingerprint() == {}
    store.create("coder")
    assert store.fingerprint() == {"coder.json": None}  # too fresh to tell from a rewrite
    path = store.path("coder")
    os.utime(path, ns=(10**18, 10**18))  # as if written long ago
    first = store.fingerprint()
    assert first["coder.json"] is not None
    store.update("coder", lambda p: p.enable("git"))
    assert store.fingerprint() == {"coder.json": None}
    os.utime(path, ns=(10**18, 10**18))  # even with the same mtime again
    second = store.fingerprint()
    assert set(first) == set(second) == {"coder.json"}
    assert first != second  # a new inode at least: writes replace the file


def test_rules(store: PersonaStore) -> None:
    persona = store.create("coder")
    with pytest.raises(KeyError):
        persona.add_rule("git", "allow_tools", "x")
    assert persona.enable("git") and not persona.enable("git")
    assert persona.add_rule("git", "allow_tools", "get_*")
    assert not persona.add_rule("git", "allow_tools", "get_*")
    assert persona.remove_rule("git", "allow_tools", "get_*")
    assert not persona.remove_rule("git", "allow_tools", "get_*")
    assert persona.disable("git") and not persona.disable("git")
