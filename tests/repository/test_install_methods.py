"""MCP bundles and remotes: verified downloads, safe unpacking, variables and secrets, mounts."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import select
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from repo_helpers import run_cli

from vmcp.testing import serve_folder

TTY_TIMEOUT = 60

SERVER = '''
import os
from mcp.server.mcpserver import MCPServer

server = MCPServer("bundle-demo")


@server.tool()
def whoami() -> str:
    """Say which settings reached the server."""
    return f"{os.environ['GREETING']} token={len(os.environ.get('BUNDLE_TOKEN', ''))}"


server.run("stdio")
'''


def bundle(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def bundle_manifest(version: str, url: str, digest: str) -> dict:
    return {
        "name": "io.example/bundle", "description": "A bundled demo server", "version": version,
        "packages": [{
            "registryType": "mcpb", "identifier": url, "fileSha256": digest,
            "transport": {"type": "stdio"},
            "environmentVariables": [
                {"name": "GREETING", "description": "how to greet", "isRequired": True},
                {"name": "BUNDLE_TOKEN", "isRequired": True, "isSecret": True},
            ],
        }],
    }


def make_site(site: Path, base: str) -> None:
    """Bundles 1.0.0 (good), 2.0.0 (escapes its folder), 3.0.0 (announced with a wrong hash)."""
    good = bundle({
        "manifest.json": json.dumps({"server": {"mcp_config": {
            "command": sys.executable, "args": ["${__dirname}/server/main.py"]}}}),
        "server/main.py": SERVER,
    })
    evil = bundle({"manifest.json": "{}", "../../escaped.txt": "gotcha"})
    (site / "good.mcpb").write_bytes(good)
    (site / "evil.mcpb").write_bytes(evil)
    servers = [
        bundle_manifest("1.0.0", f"{base}/good.mcpb", hashlib.sha256(good).hexdigest()),
        bundle_manifest("2.0.0", f"{base}/evil.mcpb", hashlib.sha256(evil).hexdigest()),
        bundle_manifest("3.0.0", f"{base}/good.mcpb", "1" * 64),
        {"name": "io.other/bundle", "description": "A remote one with the same short name",
         "version": "1.0.0", "remotes": [{
             "type": "streamable-http", "url": "https://remote.example/mcp",
             "headers": [
                 {"name": "Authorization", "value": "Bearer {api_token}", "isSecret": True,
                  "isRequired": True},
                 {"name": "X-Region", "value": "{region}", "isRequired": True},
             ]}]},
    ]
    (site / "index.json").write_text(json.dumps(servers))


def mounts(home: Path) -> dict:
    return tomllib.loads((home / "config" / "servers.toml").read_text())["servers"]


def every_file_text(root: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*")
                   if p.is_file() and p.suffix not in (".pyc", ".sqlite3"))


async def _whoami(home: Path) -> str:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "vmcp", "start"],
        env={"VMCP_HOME": str(home), "BUNDLE_TOKEN": "s3cret-value"},
    )
    with anyio.fail_after(60):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("bundle__whoami", {})
            return result.content[0].text


def test_bundles_and_remotes(home: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with serve_folder(site) as base:
        make_site(site, base)
        run_cli("repo", "add", f"{base}/index.json", "--name", "site")
        run_cli("repo", "sync")
        versions = home / "installed" / "servers" / "io.example%2Fbundle"

        # the unpacked archive escaping its folder is refused; nothing is left behind
        evil = run_cli("install", "io.example/bundle@2.0.0", "--yes", "--env", "GREETING=hi",
                       ok=False)
        assert "points outside the target folder" in evil.output
        assert not versions.exists() and not (tmp_path / "escaped.txt").exists()
        # a hash mismatch is refused before anything is unpacked
        bad = run_cli("install", "io.example/bundle@3.0.0", "--yes", "--env", "GREETING=hi",
                      ok=False)
        assert "sha256 mismatch" in bad.output and not versions.exists()
        # a required variable must be given when nobody can be asked
        need = run_cli("install", "io.example/bundle@1.0.0", "--yes", ok=False)
        assert "required variables without a value: GREETING" in need.output

        out = run_cli("install", "io.example/bundle@1.0.0", "--yes", "--env", "GREETING=hello",
                      "--env", "BUNDLE_TOKEN=s3cret-value").output
    assert "BUNDLE_TOKEN is secret and is not stored" in out
    assert f"download {base}/good.mcpb" in out and "mounted as 'bundle'" in out
    entry = mounts(home)["bundle"]
    assert entry["command"] == sys.executable
    assert entry["args"] == [str(versions / "1.0.0" / "bundle" / "server" / "main.py")]
    assert entry["env"] == {"GREETING": "hello", "BUNDLE_TOKEN": "${BUNDLE_TOKEN}"}
    assert anyio.run(_whoami, home) == "hello token=12"

    # the remote with the same short name gets its own mount id; its secret stays a reference
    short = run_cli("install", "bundle", "--yes", ok=False)
    assert "ambiguous: io.example/bundle, io.other/bundle" in short.output
    missing = run_cli("install", "io.other/bundle", "--yes", ok=False)
    assert "REGION" in missing.output
    out = run_cli("install", "io.other/bundle", "--yes", "--env", "REGION=eu",
                  "--env", "API_TOKEN=tok-123").output
    assert "mounted as 'bundle-2'" in out
    assert mounts(home)["bundle-2"] == {
        "description": "A remote one with the same short name", "transport": "http",
        "url": "https://remote.example/mcp",
        "headers": {"Authorization": "Bearer ${API_TOKEN}", "X-Region": "eu"},
        "pinning": "enforce",
    }
    assert "s3cret-value" not in every_file_text(home)
    assert "tok-123" not in every_file_text(home)

    # mount and unmount what is installed
    assert "already as bundle-2" in run_cli("mount", "io.other/bundle", ok=False).output
    run_cli("mount", "io.other/bundle", "--id", "eu-remote", "--env", "REGION=eu")
    assert "io.other/bundle stays installed" in run_cli("unmount", "bundle-2").output
    rows = json.loads(run_cli("installed", "--json").output)
    assert {r["name"]: r["mounts"] for r in rows} == {
        "io.example/bundle": ["bundle"], "io.other/bundle": ["eu-remote"]}
    assert "no mount 'nope'" in run_cli("unmount", "nope", ok=False).output
    run_cli("uninstall", "io.other/bundle", "--force")
    assert set(mounts(home)) == {"bundle"}


def folders_manifest(site: Path, base: str) -> dict:
    """A bundle ``io.example/folders`` 1.0.0 with a required positional argument, served
    from ``site`` (at ``base``) and listed in its ``index.json``."""
    good = bundle({
        "manifest.json": json.dumps({"server": {"mcp_config": {
            "command": sys.executable, "args": ["${__dirname}/server/main.py"]}}}),
        "server/main.py": SERVER,
    })
    (site / "good.mcpb").write_bytes(good)
    manifest = bundle_manifest("1.0.0", f"{base}/good.mcpb", hashlib.sha256(good).hexdigest())
    manifest["name"] = "io.example/folders"
    manifest["packages"][0]["environmentVariables"] = []
    manifest["packages"][0]["packageArguments"] = [
        {"type": "positional", "valueHint": "folder", "isRequired": True,
         "description": "the folder it may read"},
        {"type": "named", "name": "--mode", "default": "ro"}]
    (site / "index.json").write_text(json.dumps([manifest]))
    return manifest


def test_package_arguments_are_given_and_checked_before_any_download(home: Path,
                                                                     tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    with serve_folder(site) as base:
        manifest = folders_manifest(site, base)
        run_cli("repo", "add", f"{base}/index.json", "--name", "site")
        run_cli("repo", "sync")
        versions = home / "installed" / "servers" / "io.example%2Ffolders"

        shown = run_cli("show", "folders", "--no-readme").output
        assert "argument folder [required, --arg folder=VALUE] the folder it may read" in shown
        need = run_cli("install", "folders", "--yes", ok=False)
        assert need.exit_code == 1
        assert "required arguments without a value: folder (the folder it may read)" \
            in need.output
        assert not versions.exists()
        wrong = run_cli("install", "folders", "--yes", "--arg", "fodler=/srv", ok=False)
        assert wrong.exit_code == 2 and "takes no argument fodler" in wrong.output

        run_cli("install", "folders", "--yes", "--arg", "folder=/srv/data")
        entry = mounts(home)["folders"]
        assert entry["args"] == [str(versions / "1.0.0" / "bundle" / "server" / "main.py"),
                                 "/srv/data", "--mode", "ro"]

        def publish(*numbers: str) -> None:
            (site / "index.json").write_text(json.dumps(
                [{**manifest, "version": number} for number in ("1.0.0", *numbers)]))
            run_cli("repo", "sync")

        # an update gives the new version the values given at install
        publish("1.1.0")
        run_cli("update", "folders", "--yes")
        assert mounts(home)["folders"]["args"][1:] == ["/srv/data", "--mode", "ro"]
        # and takes new ones, checked before anything is downloaded
        publish("1.1.0", "1.2.0")
        wrong = run_cli("update", "folders", "--yes", "--arg", "fodler=/srv", ok=False)
        assert wrong.exit_code == 2 and "takes no argument fodler" in wrong.output
        assert not (versions / "1.2.0").exists()
        run_cli("update", "folders", "--yes", "--arg", "folder=/srv/other")
    entry = mounts(home)["folders"]
    assert entry["args"] == [str(versions / "1.2.0" / "bundle" / "server" / "main.py"),
                             "/srv/other", "--mode", "ro"]


def _read_until(fd: int, text: str, seen: bytearray) -> str:
    """What the terminal showed up to ``text`` (the test fails after TTY_TIMEOUT)."""
    deadline = time.monotonic() + TTY_TIMEOUT
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {text!r} on the terminal; it showed {bytes(seen)!r}"
        if select.select([fd], [], [], left)[0]:
            seen += os.read(fd, 4096)
    return seen.decode(errors="replace")


def test_a_terminal_is_asked_for_what_is_missing_before_any_download(home: Path,
                                                                     tmp_path: Path) -> None:
    """On a terminal a required argument is asked for, then the plan is confirmed; only
    then is the bundle fetched."""
    site = tmp_path / "site"
    site.mkdir()
    with serve_folder(site) as base:
        folders_manifest(site, base)
        run_cli("repo", "add", f"{base}/index.json", "--name", "site")
        run_cli("repo", "sync")
        versions = home / "installed" / "servers" / "io.example%2Ffolders"
        controller, terminal = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "vmcp", "install", "folders"],
                                   stdin=terminal, stdout=terminal, stderr=terminal)
        os.close(terminal)
        seen = bytearray()
        try:
            _read_until(controller, "folder (the folder it may read): ", seen)
            assert not versions.exists()
            os.write(controller, b"/srv/asked\n")
            _read_until(controller, "Proceed? [y/N]: ", seen)
            assert not versions.exists()
            os.write(controller, b"y\n")
            _read_until(controller, "mounted as 'folders'", seen)
            assert process.wait(TTY_TIMEOUT) == 0, bytes(seen)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(controller)
    assert mounts(home)["folders"]["args"][1:] == ["/srv/asked", "--mode", "ro"]
