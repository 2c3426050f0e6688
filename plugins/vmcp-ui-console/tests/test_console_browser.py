"""The console in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by selenium) against a real ``vmcp start``: sign-in refused without the right token,
every page loaded, tokens created and revoked with effects checked through the CLI, CSRF and
Host checks, and screenshots saved into ``docs/screenshots/``.

Skipped only where Chromium is missing and ``CI`` is not set; in CI the test must run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from vmcp.auth.tokens import TokenStore
from vmcp.persona import PersonaStore

ROOT = Path(__file__).resolve().parents[3]
ALPHA = ROOT / "tests" / "fixtures" / "servers" / "alpha.py"
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
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


class Home:
    """A ``VMCP_HOME`` with a configuration, two personas and a token for each."""

    def __init__(self, path: Path) -> None:
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
            '[audit]\nenabled = true\n\n[console]\nenabled = true\nadmins = ["ops"]\n\n'
            f"[servers.alpha]\ncommand = {json.dumps(sys.executable)}\n"
            f"args = [{json.dumps(str(ALPHA))}]\n", encoding="utf-8")

    def env(self) -> dict[str, str]:
        """The environment of every ``vmcp`` command run on this home."""
        return {**os.environ, "VMCP_HOME": str(self.path)}

    def vmcp(self, *args: str) -> Any:
        """Run ``vmcp ARGS --json``; its parsed output."""
        result = subprocess.run([sys.executable, "-m", "vmcp", "--config", str(self.config),
                                 *args, "--json"], env=self.env(), capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[Home, str]]:
    """A gateway serving the console; yields the home and the console's URL."""
    home = Home(tmp_path / "home")
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


def _click(browser: webdriver.Chrome, by: str, selector: str) -> None:
    """Click, then wait until the next page has replaced this one."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(by, selector).click()
    WebDriverWait(browser, TIMEOUT).until(expected_conditions.staleness_of(page))


def _sign_in(browser: webdriver.Chrome, url: str, token: str) -> None:
    browser.get(url + "login")
    browser.find_element(By.NAME, "token").send_keys(token)
    _click(browser, By.CSS_SELECTOR, "#login button")


def _text(browser: webdriver.Chrome, selector: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, selector).text


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
    browser.save_screenshot(str(SCREENSHOTS / "console-overview.png"))

    # Personas: what each sees; a deny pattern added and a server disabled, checked by the CLI.
    _click(browser, By.LINK_TEXT, "Personas")
    assert "echo" in _text(browser, "#servers-ops")
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
