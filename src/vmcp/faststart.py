"""The fast start of ``vmcp start`` on stdio: the first answers from a front snapshot.

Importing the command line, the configuration models and the gateway takes about half a
second; a client that spawns ``vmcp start`` waits that long for its first ``tools/list``
even when the warm catalog holds every mount's tools. So both ways in (the ``vmcp`` script
and ``python -m vmcp``) enter here first, with nothing imported but ``json``, ``hashlib``,
``os`` and ``sys``.

The real gateway keeps, in ``$VMCP_HOME/cache/front/``, the ``initialize`` result and the
first page of ``tools/list`` it gave its stdio client (:mod:`vmcp.gateway.frontsnapshot`),
under a key (:func:`view_key`) over everything that can change what that client is shown:
the command line, the working folder, the ``VMCP_*`` environment, the installed packages,
the configuration files' bytes (and the defaults shipped under them) and the state files
under ``$VMCP_HOME`` the view is built from (personas, pins, the warm catalog, installed
servers). When the key matches,
:func:`main` answers ``ping``, ``initialize`` (for the protocol version the snapshot was
given for) and the first ``tools/list`` itself, then hands every byte it read to the real
gateway (:data:`HANDOVER`): its stdio front replays those lines in order, so the session is
set up exactly as if it had read them, and drops the answers already given. Before it
hands over, the fast start also spawns the stdio backends the snapshot records
(:mod:`vmcp.headstart`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from vmcp import headstart

TYPE_CHECKING = False  # typing itself is not imported: its import costs the fast start
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

#: where the snapshots are kept, under ``$VMCP_HOME``
FOLDER = ("cache", "front")
#: the ``_meta`` key of a 2026-07-28 request (served by the real gateway only)
_MODERN = "io.modelcontextprotocol/protocolVersion"
#: a line longer than this is the real front's business (its size limit and error)
_LINE_LIMIT = 1 << 20
#: the state folders under ``$VMCP_HOME`` whose files the stdio client's view is built from
_STATE_FOLDERS = (("config", "personas"), ("pins",), ("catalog",))
#: the folder whose entries are the installed servers (stat only: they are large)
_INSTALLED = ("installed", "servers")
#: ``vmcp start`` options the fast start knows (their values are part of the key)
_VALUED = ("--persona", "--log-level", "--transport", "-t")


class Launch:
    """A ``vmcp start`` serving stdio: where its snapshot is, and the key it must carry."""

    __slots__ = ("config", "home", "key", "name")

    def __init__(self, home: str, config: str, name: str, key: str) -> None:
        self.home = home
        self.config = config
        #: the snapshot file's name (from the command line, environment and installation)
        self.name = name
        #: the key the snapshot must carry to be served (that, plus the state files)
        self.key = key

    @property
    def path(self) -> str:
        """The snapshot file of this start."""
        return os.path.join(self.home, *FOLDER, self.name + ".json")


class Handover:
    """What the fast start read from stdin and what it answered, for the real front."""

    __slots__ = ("answered", "consumed")

    def __init__(self, consumed: bytes, answered: dict[int | str, tuple[str, Any]]) -> None:
        #: every byte read from stdin (whole lines, and what followed the last of them)
        self.consumed = consumed
        #: request id -> (method, the result sent)
        self.answered = answered


#: this process's start, when it was entered through :func:`main` as a stdio ``vmcp start``
LAUNCH: Launch | None = None
#: what the fast start served, until the stdio front takes it (:func:`take_handover`)
HANDOVER: Handover | None = None


def main() -> None:
    """Entry point of ``vmcp`` and ``python -m vmcp``: answer from the snapshot if one
    matches, then run the command line."""
    global LAUNCH, HANDOVER
    try:
        LAUNCH = launch(sys.argv[1:], os.environ, os.getcwd())
    except OSError:  # no working folder: the command line reports what goes wrong
        LAUNCH = None
    if LAUNCH is not None and (snapshot := load(LAUNCH)) is not None:
        entries = served_entries(snapshot)
        if entries:
            try:
                HANDOVER = serve(entries, 0, 1)
            except KeyboardInterrupt:  # Ctrl-C before the gateway even started: just stop
                raise SystemExit(130) from None
        # after the answers: ten starting backends on two cores would delay them
        headstart.spawn(snapshot.get(headstart.SPAWNS), os.environ)
    from vmcp.cli import main as cli_main

    cli_main()


def take_handover() -> Handover | None:
    """The fast start's handover, once (the stdio front of this process takes it)."""
    global HANDOVER
    handover, HANDOVER = HANDOVER, None
    return handover


# -- the key ---------------------------------------------------------------------------------


def launch(argv: list[str], environ: Mapping[str, str], cwd: str) -> Launch | None:
    """The stdio start ``argv`` (``vmcp``'s arguments) asks for, or None for any other
    command, or options the fast start does not know."""
    config: str | None = None
    index = 0
    while index < len(argv) and argv[index].startswith("--config"):
        arg = argv[index]
        if arg == "--config" and index + 1 < len(argv):
            config, index = argv[index + 1], index + 2
        elif arg.startswith("--config="):
            config, index = arg[len("--config="):], index + 1
        else:
            return None
    if argv[index:index + 1] != ["start"]:
        return None
    rest = argv[index + 1:]
    while rest:
        option, _, value = rest[0].partition("=")
        if option not in _VALUED:
            return None
        if not value:
            if len(rest) < 2:
                return None
            value, rest = rest[1], rest[2:]
        else:
            rest = rest[1:]
        if option in ("--transport", "-t") and value != "stdio":
            return None
    home = environ.get("VMCP_HOME") or os.path.join(os.path.expanduser("~"), ".vmcp")
    config = config or environ.get("VMCP_CONFIG") or os.path.join(home, "config", "vmcp.toml")
    identity = json.dumps({
        "argv": argv, "cwd": cwd, "python": sys.executable,
        "env": sorted((k, v) for k, v in environ.items() if k.startswith("VMCP_")),
        "packages": _packages(),
    }, sort_keys=True)
    name = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return Launch(home, config, name, view_key(name, home, config))


def view_key(name: str, home: str, config: str) -> str:
    """The key over the start ``name`` and the files its stdio client's view is built from,
    as they are now."""
    digest = hashlib.sha256(name.encode())
    defaults = os.path.join(os.path.dirname(__file__), "defaults")  # under the user's files
    for path in (config, os.path.join(os.path.dirname(config), "servers.toml"),
                 os.path.join(defaults, "vmcp.toml"), os.path.join(defaults, "servers.toml")):
        _add_file(digest, path)
    for parts in _STATE_FOLDERS:
        folder = os.path.join(home, *parts)
        for entry in _entries(folder):
            _add_file(digest, os.path.join(folder, entry))
    folder = os.path.join(home, *_INSTALLED)
    for entry in _entries(folder):
        try:
            stat = os.stat(os.path.join(folder, entry))
        except OSError:
            continue
        digest.update(f"\0{entry}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _add_file(digest: Any, path: str) -> None:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        data = None
    digest.update(f"\0{path}\0".encode())
    digest.update(b"-" if data is None else hashlib.sha256(data).digest())


def _entries(folder: str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except OSError:
        return []


def _packages() -> list[str]:
    """The distributions installed where this interpreter imports from (name and version:
    another vmcp or plugin changes the key)."""
    found = []
    for folder in sys.path:
        if not folder.endswith(("site-packages", "dist-packages")):
            continue  # not where distributions are installed (the working folder may be huge)
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found += [name for name in names if name.endswith(".dist-info")]
    return sorted(found)


def served_entries(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """The entries of a snapshot read by :func:`load` (requested protocol version ->
    ``initialize`` and ``tools`` results); None when it holds none."""
    entries = None if snapshot is None else snapshot.get("entries")
    return entries if isinstance(entries, dict) else None


def load(start: Launch) -> dict[str, Any] | None:
    """The whole snapshot when its key is ``start``'s and only its owner can change it (it
    says which programs to run); None when missing, stale, unreadable or not private."""
    try:
        with open(start.path, "rb") as file:
            status = os.fstat(file.fileno())
            if status.st_uid != os.getuid() or status.st_mode & 0o022:
                return None
            snapshot = json.loads(file.read())
    except (OSError, ValueError):
        return None
    if not isinstance(snapshot, dict) or snapshot.get("key") != start.key:
        return None
    return snapshot


# -- serving ---------------------------------------------------------------------------------


def serve(entries: dict[str, Any], fd_in: int, fd_out: int) -> Handover:
    """Answer from ``entries`` what comes on ``fd_in`` until the first ``tools/list`` was
    answered or a line comes that the snapshot does not serve, or the input ends."""
    front = _FastFront(entries, fd_out)
    chunks: list[bytes] = []
    pending = b""
    going = True
    while going:
        newline = pending.find(b"\n")
        if newline < 0:
            if len(pending) > _LINE_LIMIT:
                break
            try:
                chunk = os.read(fd_in, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            pending += chunk
            continue
        line, pending = pending[:newline], pending[newline + 1:]
        if line.strip():
            going = front.take(line)
    return Handover(b"".join(chunks), front.answered)


class _FastFront:
    """Serves the first lines of a stdio session from a snapshot."""

    def __init__(self, entries: dict[str, Any], fd_out: int) -> None:
        self.entries = entries
        self.fd_out = fd_out
        self.entry: dict[str, Any] | None = None
        self.answered: dict[int | str, tuple[str, Any]] = {}

    def take(self, line: bytes) -> bool:
        """Answer ``line`` if the snapshot serves it; False: hand over now."""
        try:
            message = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return False
        method, params = message.get("method"), message.get("params")
        if "id" not in message:  # a notification: only the handshake's own goes on
            return method == "notifications/initialized" and self.entry is not None
        request_id = message["id"]
        if type(request_id) not in (int, str) or request_id in self.answered:
            return False
        if params is not None and not isinstance(params, dict):
            return False
        params = params or {}
        meta = params.get("_meta")
        if meta is not None and (not isinstance(meta, dict) or _MODERN in meta):
            return False
        if method == "ping" and not set(params) - {"_meta"}:
            return self._answer(request_id, method, {})
        if method == "initialize" and self.entry is None:
            entry = self.entries.get(params.get("protocolVersion"))
            if not isinstance(entry, dict) or not isinstance(entry.get("initialize"), dict) \
                    or not isinstance(entry.get("tools"), dict):
                return False
            self.entry = entry
            return self._answer(request_id, method, entry["initialize"])
        if method == "tools/list" and self.entry is not None and not set(params) - {"_meta"}:
            self._answer(request_id, method, self.entry["tools"])
            return False  # the list is what the client waits for: the gateway takes over
        return False

    def _answer(self, request_id: int | str, method: str, result: Any) -> bool:
        data = json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result},
                          separators=(",", ":")).encode() + b"\n"  # ASCII: always encodable
        try:
            while data:
                data = data[os.write(self.fd_out, data):]
        except OSError:
            return False  # the client is gone; the real front sees it too
        self.answered[request_id] = (method, result)
        return True
