"""The console in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by selenium) against a real ``vmcp start``: sign-in refused without the right token,
every page loaded, every action performed with its effect checked through the CLI (mount and
unmount, persona changes, an installed server updated and rolled back from a served index of
MCP bundles, tokens created and revoked), the traffic charts kept live by the console's script,
CSRF and Host checks, and screenshots saved into ``docs/screenshots/``.

Skipped only where Chromium is missing and ``CI`` is not set; in CI the test must run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from vmcp.auth.tokens import TokenStore
from vmcp.persona import PersonaStore
from vmcp.testing import serve_folder

ROOT = Path(__file__).resolve().parents[3]
ALPHA = ROOT / "tests" / "fixtures" / "servers" / "alpha.py"
BETA = ROOT / "tests" / "fixtures" / "servers" / "beta.py"
BUNDLE = "io.example/bundle"
#: the bundled server: its one tool says which version of the bundle runs
BUNDLED_SERVER = """
from mcp.server.mcpserver import MCPServer

server = MCPServer("bundle")


@server.tool()
def version() -> str:
    return {version!r}


server.run("stdio")
"""
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
TIMEOUT = 30.0
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900")

if CHROMIUM is None or CHROMEDRIVER is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must run the console's browser tests: install chromium and "
                           "chromium-driver")
    pytest.skip("chromium and chromium-driver are not installed "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium import webdriver  # noqa: E402 (only once Chromium is known to be there)
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def make_site(site: Path, base: str) -> None:
    """An index of two versions of one MCP bundle, each in its own archive."""
    manifests = []
    for version in ("1.0.0", "2.0.0"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("manifest.json", json.dumps({"server": {"mcp_config": {
                "command": sys.executable, "args": ["${__dirname}/main.py"]}}}))
            archive.writestr("main.py", BUNDLED_SERVER.format(version=version))
        (site / f"bundle-{version}.mcpb").write_bytes(buffer.getvalue())
        manifests.append({
            "name": BUNDLE, "description": "A bundle that says its version",
            "version": version, "packages": [{
                "registryType": "mcpb", "identifier": f"{base}/bundle-{version}.mcpb",
                "fileSha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
                "transport": {"type": "stdio"}}]})
    (site / "index.json").write_text(json.dumps(manifests), encoding="utf-8")


class Home:
    """A ``VMCP_HOME`` with a configuration, two personas and a token for each, and the
    first version of a bundle installed from ``site`` (served at ``base``)."""

    def __init__(self, path: Path, site: Path, base: str) -> None:
        self.path = path
        personas = PersonaStore(path / "config" / "personas")
        for name in ("ops", "coder"):
            persona = personas.create(name)
            persona.enable("alpha")
            personas.save(persona)
        tokens = TokenStore(path / "config" / "tokens.json")
        _, self.ops = tokens.create("ops", timedelta(hours=1), "ops-token")
        _, self.coder = tokens.create("coder", timedelta(hours=1), "coder-token")
        self.config = path / "config" / "vmcp.toml"
        self.config.write_text(
            '[auth]\ndriver = "token"\n\n[transports.http]\nport = 0\n\n'
            f'[logging]\nfile = {json.dumps(str(path / "logs" / "vmcp.log"))}\n\n'
            '[audit]\nenabled = true\n\n[console]\nenabled = true\nadmins = ["ops"]\n'
            'chart_interval = 0.5\n\n'
            f"[servers.alpha]\ncommand = {json.dumps(sys.executable)}\n"
            f"args = [{json.dumps(str(ALPHA))}]\n\n"
            f"[servers.beta]\nenabled = false\ncommand = {json.dumps(sys.executable)}\n"
            f"args = [{json.dumps(str(BETA))}]\n", encoding="utf-8")
        make_site(site, base)
        self.run("repo", "add", f"{base}/index.json", "--name", "site")
        self.run("repo", "sync")
        installed = self.run("install", f"{BUNDLE}@1.0.0", "--yes")
        assert "mounted as 'bundle'" in installed, installed

    def env(self) -> dict[str, str]:
        """The environment of every ``vmcp`` command run on this home."""
        return {**os.environ, "VMCP_HOME": str(self.path)}

    def run(self, *args: str) -> str:
        """Run ``vmcp ARGS``; its output."""
        result = subprocess.run([sys.executable, "-m", "vmcp", "--config", str(self.config),
                                 *args], env=self.env(), capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def vmcp(self, *args: str) -> Any:
        """Run ``vmcp ARGS --json``; its parsed output."""
        return json.loads(self.run(*args, "--json"))


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[Home, str]]:
    """A gateway serving the console; yields the home and the console's URL."""
    site = tmp_path / "site"
    site.mkdir()
    with serve_folder(site) as base:
        yield from _serve_console(Home(tmp_path / "home", site, base))


def _serve_console(home: Home) -> Iterator[tuple[Home, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "vmcp", "--config", str(home.config), "start", "-t", "http"],
        env=home.env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith("vmcp: console on "):
                url.append(line.removeprefix("vmcp: console on ").strip())
            if line.startswith("vmcp: serving http"):
                found.set()
        found.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert found.wait(TIMEOUT) and url, "gateway did not start:\n" + "".join(lines)
        yield home, url[0]
    finally:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(TIMEOUT)
        print("--- gateway stderr ---\n" + "".join(lines))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def _replaced(element: WebElement) -> Any:
    """A wait condition: ``element`` no longer belongs to the document. Chromium reports
    that either as a stale element or, while the new document is being attached, as an
    inspector error saying so (which ``staleness_of`` lets through)."""

    def check(_: Any) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" not in str(exc):
                raise
            return True
        return False

    return check


def _click(browser: webdriver.Chrome, by: str, selector: str) -> None:
    """Click, then wait until the next page has replaced this one."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(by, selector).click()
    WebDriverWait(browser, TIMEOUT).until(_replaced(page))


def _sign_in(browser: webdriver.Chrome, url: str, token: str) -> None:
    browser.get(url + "login")
    browser.find_element(By.NAME, "token").send_keys(token)
    _click(browser, By.CSS_SELECTOR, "#login button")


def _text(browser: webdriver.Chrome, selector: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, selector).text


def _number(browser: webdriver.Chrome, element_id: str) -> float:
    """The number an element shows, read in one step (the script replaces the charts)."""
    return float(browser.execute_script(
        "return document.getElementById(arguments[0]).textContent", element_id))


def _state(home: Home, mount_id: str) -> str:
    """The state ``vmcp list`` gives a mount."""
    return next(row["state"] for row in home.vmcp("list") if row["id"] == mount_id)


def _call(home: Home, tool: str) -> str:
    """The text ``vmcp call TOOL`` answers."""
    return home.vmcp("call", tool)["content"][0]["text"]


@pytest.mark.timeout(300)  # one long walk through every page, with many CLI runs
def test_console_pages_and_actions(console: tuple[Home, str], browser: webdriver.Chrome) -> None:
    home, url = console
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    # Refused: no token, a wrong one, one of a persona that is not an admin.
    browser.get(url)
    assert "Sign in with a token" in _text(browser, "#error")
    browser.save_screenshot(str(SCREENSHOTS / "console-sign-in.png"))
    _sign_in(browser, url, home.ops + "x")
    assert "not valid" in _text(browser, "#error")
    _sign_in(browser, url, home.coder)
    assert "'coder' may not use the console" in _text(browser, "#error")

    _sign_in(browser, url, home.ops)
    assert _text(browser, "#ready") == "Ready"
    assert "alpha" in _text(browser, "#mounts") and "closed" in _text(browser, "#mounts")
    assert "http" in _text(browser, "#fronts")

    # Mount a configured server from the overview, then unmount it; the CLI sees both.
    _click(browser, By.CSS_SELECTOR, "#unmounted-beta button")
    assert _text(browser, "#said") == "mounted beta"
    assert _state(home, "beta") == "up"
    browser.save_screenshot(str(SCREENSHOTS / "console-overview.png"))
    _click(browser, By.CSS_SELECTOR, "#mount-beta-0 button")
    assert _text(browser, "#said") == "unmounted beta"
    assert _state(home, "beta") == "unmounted"
    assert "beta" in _text(browser, "#unmounted")

    # Personas: what each sees; a deny pattern added and a server disabled, checked by the CLI.
    _click(browser, By.LINK_TEXT, "Personas")
    assert "echo" in _text(browser, "#servers-ops")
    assert "plan" in _text(browser, "#servers-ops")  # a prompt
    assert "alpha://counter" in _text(browser, "#servers-ops")  # a resource
    coder = browser.find_element(By.ID, "persona-coder")
    coder.find_element(By.CSS_SELECTOR, ".rule input[name=pattern]").send_keys("echo")
    Select(coder.find_element(By.CSS_SELECTOR, ".rule select[name=kind]")).select_by_value(
        "deny_tools")
    _click(browser, By.CSS_SELECTOR, "#persona-coder .rule button[value=add]")
    assert home.vmcp("persona", "show", "coder")["servers"]["alpha"]["deny_tools"] == ["echo"]
    assert "deny_tools: echo" in _text(browser, "#servers-coder")
    browser.save_screenshot(str(SCREENSHOTS / "console-personas.png"))
    _click(browser, By.CSS_SELECTOR, "#persona-coder .enable button[value=disable]")
    assert home.vmcp("persona", "show", "coder")["servers"] == {}
    _click(browser, By.CSS_SELECTOR, "#persona-coder .enable button[value=enable]")
    assert list(home.vmcp("persona", "show", "coder")["servers"]) == ["alpha"]

    # The log tail.
    _click(browser, By.LINK_TEXT, "Log")
    assert "mounted alpha" in _text(browser, "#log")
    browser.save_screenshot(str(SCREENSHOTS / "console-log.png"))

    # A call through the control socket is audited, and the audit page shows it.
    called = home.vmcp("call", "alpha__echo", "text=hi")
    assert called["content"][0]["text"] == "alpha: hi"
    _click(browser, By.LINK_TEXT, "Audit trail")
    assert "echo" in _text(browser, "#audit") and "ok" in _text(browser, "#audit")
    browser.save_screenshot(str(SCREENSHOTS / "console-audit.png"))

    # The traffic charts: the page's script fetches them again as calls are made.
    _click(browser, By.LINK_TEXT, "Traffic")
    for _ in range(3):
        home.vmcp("call", "alpha__echo", "text=again")
    WebDriverWait(browser, TIMEOUT).until(lambda b: _number(b, "rate-peak-alpha") > 0)
    assert _number(browser, "latency-peak-alpha") > 0
    assert browser.find_element(By.ID, "charts").get_attribute("data-live") == "1"
    assert _number(browser, "rate-peak-bundle") == 0
    browser.save_screenshot(str(SCREENSHOTS / "console-traffic.png"))

    # Update the installed bundle, then roll it back: the live mount follows each time.
    _click(browser, By.LINK_TEXT, "Installed")
    assert "current" in _text(browser, "[id='installed-io-example-bundle-1.0.0']")
    assert _call(home, "bundle__version") == "1.0.0"
    _click(browser, By.CSS_SELECTOR, "form[action='/installed/update'] button")
    assert _text(browser, "#said") == (
        f"updated {BUNDLE} 1.0.0 -> 2.0.0; restarted bundle")
    assert [r["version"] for r in home.vmcp("installed") if r["current"]] == ["2.0.0"]
    assert _call(home, "bundle__version") == "2.0.0"
    browser.save_screenshot(str(SCREENSHOTS / "console-installed.png"))
    _click(browser, By.CSS_SELECTOR, "form[action='/installed/rollback'] button")
    assert _text(browser, "#said") == (
        f"rolled {BUNDLE} back from 2.0.0 to 1.0.0; restarted bundle")
    assert [r["version"] for r in home.vmcp("installed") if r["current"]] == ["1.0.0"]
    assert _call(home, "bundle__version") == "1.0.0"

    # Create a token: shown once, listed by the CLI; revoke it: gone from the CLI's list.
    _click(browser, By.LINK_TEXT, "Tokens")
    browser.find_element(By.NAME, "persona").send_keys("coder")
    browser.find_element(By.NAME, "name").send_keys("from-console")
    _click(browser, By.CSS_SELECTOR, "#create button")
    created = _text(browser, "#new-token")
    assert created.startswith("vmcp_")
    browser.save_screenshot(str(SCREENSHOTS / "console-tokens.png"))
    [record] = [t for t in home.vmcp("token", "list") if t["name"] == "from-console"]
    assert record["persona"] == "coder"
    _click(browser, By.CSS_SELECTOR, f"#token-{record['id']} button")
    assert f"token-{record['id']}" not in browser.page_source
    assert not [t for t in home.vmcp("token", "list") if t["name"] == "from-console"]

    # A bad persona is a clear error on the page, and nothing is created.
    browser.find_element(By.NAME, "persona").send_keys("nobody")
    _click(browser, By.CSS_SELECTOR, "#create button")
    assert "nobody" in _text(browser, "#error")
    assert len(home.vmcp("token", "list")) == 2

    # Outside the browser: a form without the CSRF token, a foreign Host, a foreign Origin.
    cookie = {"vmcp_console": home.ops}
    with httpx2.Client(timeout=TIMEOUT, cookies=cookie) as http:
        ops_id = next(t["id"] for t in home.vmcp("token", "list") if t["persona"] == "ops")
        assert http.post(url + "tokens/revoke", data={"id": ops_id}).status_code == 403
        assert http.get(url, headers={"Host": "evil.example"}).status_code == 403
        assert http.post(url + "tokens/revoke", data={"id": ops_id},
                         headers={"Origin": "https://evil.example"}).status_code == 403
        assert http.get(url).status_code == 200
    assert len(home.vmcp("token", "list")) == 2
    with httpx2.Client(timeout=TIMEOUT) as anonymous:
        refused = anonymous.get(url + "tokens")
        assert refused.status_code == 401 and "from-console" not in refused.text

    _click(browser, By.ID, "logout")
    browser.get(url + "tokens")
    assert "Sign in with a token" in _text(browser, "#error")
