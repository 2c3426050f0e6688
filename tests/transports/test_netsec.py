"""The network exposure rules every listening front shares (``vmcp.transports.netsec``)."""

from __future__ import annotations

import pytest
from pydantic import Field, field_validator

from vmcp.config import ConfigError
from vmcp.transports.netsec import (
    DEFAULT_MAX_MESSAGE_BYTES,
    HostOriginPolicy,
    NetworkFrontSettings,
    check_network_front,
    front_url,
    is_loopback,
    parse_front_settings,
    refuse_insecure_bind,
    validate_url_path,
)


class DemoSettings(NetworkFrontSettings):
    """A front's own table, the way a transport plugin declares it."""

    port: int = Field(4000, ge=0, le=65535)
    path: str = "/mcp"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return validate_url_path(value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost",
                                  "LOCALHOST", "ip6-localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.2", "example.com", ""])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_non_loopback_bind_needs_an_auth_driver() -> None:
    refuse_insecure_bind("ws", "127.0.0.1", auth_required=False)
    refuse_insecure_bind("ws", "0.0.0.0", auth_required=True)
    with pytest.raises(ConfigError) as refused:
        refuse_insecure_bind("ws", "0.0.0.0", auth_required=False)
    [problem] = refused.value.problems
    assert problem.startswith("transports.ws.host: refusing to serve ws on '0.0.0.0'")
    assert "[auth]" in problem and "127.0.0.1" in problem
    assert refused.value.source == "[transports.ws]"


def test_check_network_front_validates_then_refuses_a_public_bind_without_auth() -> None:
    assert check_network_front(DemoSettings, "demo", {"port": 0}, False).port == 0
    assert check_network_front(DemoSettings, "demo", {"host": "0.0.0.0"}, True).port == 4000
    with pytest.raises(ConfigError) as invalid:
        check_network_front(DemoSettings, "demo", {"port": -1}, True)
    assert invalid.value.problems[0].startswith("transports.demo.port:")
    with pytest.raises(ConfigError) as refused:
        check_network_front(DemoSettings, "demo", {"host": "0.0.0.0"}, False)
    assert "refusing to serve demo on '0.0.0.0'" in refused.value.problems[0]


def test_host_header_defaults_accept_loopback_names_and_ip_literals() -> None:
    policy = HostOriginPolicy("127.0.0.1", [], [])
    for host in ("localhost:3000", "LOCALHOST", "127.0.0.1:3001", "[::1]:3001", "::1",
                 "10.1.2.3"):
        assert policy.host_allowed(host), host
    for host in ("evil.example", "evil.example:3001", "localhost.evil.example", "", None):
        assert not policy.host_allowed(host), host


def test_host_allow_list_by_name_by_port_and_wildcard() -> None:
    by_name = HostOriginPolicy("127.0.0.1", ["gw.example"], [])
    assert by_name.host_allowed("gw.example:443")
    assert by_name.host_allowed("GW.example")
    by_port = HostOriginPolicy("127.0.0.1", ["gw.example:8080"], [])
    assert by_port.host_allowed("gw.example:8080")
    assert not by_port.host_allowed("gw.example:9090")
    assert HostOriginPolicy("127.0.0.1", ["*"], []).host_allowed("anything.example")
    assert HostOriginPolicy("myhost.lan", [], []).host_allowed("myhost.lan:3001")
    assert not HostOriginPolicy("0.0.0.0", [], []).host_allowed("0.0.0.0.example")


@pytest.mark.parametrize("host", ["caf\u00e9.example", "\u4e2d.example:80", "a\udcff.example"])
def test_a_host_that_is_not_printable_ascii_is_never_accepted(host: str) -> None:
    # a host is sent in its ASCII form, and the front may name it back (an OAuth challenge)
    for allowed in ([], [host], ["*"]):
        assert not HostOriginPolicy("127.0.0.1", allowed, []).host_allowed(host)
    assert HostOriginPolicy("127.0.0.1", ["*"], []).host_allowed(None)  # as before


def test_origin_checks() -> None:
    policy = HostOriginPolicy("127.0.0.1", [], ["https://App.example/"])
    # the front's own origin (that of the Host it is reached by), listed ones, or none
    for origin, host in ((None, "localhost:8080"), ("http://localhost:8080", "localhost:8080"),
                         ("https://127.0.0.1", "127.0.0.1"), ("http://[::1]:8080", "[::1]:8080"),
                         ("https://app.example", "localhost:8080"),
                         ("HTTPS://APP.EXAMPLE/", None)):
        assert policy.origin_allowed(origin, host), origin
    # a page on another port of this machine is another site
    for origin, host in (("http://localhost:5173", "localhost:8080"),
                         ("http://127.0.0.1", "127.0.0.1:8080"),
                         ("http://127.0.0.1:8080", "localhost:8080"),
                         ("http://localhost:8080", None), ("http://evil.example", "localhost"),
                         ("null", "localhost"), ("file://", "localhost"),
                         ("ws://localhost", "localhost"), ("http://localhost/x", "localhost"),
                         ("https://app.example:444", "localhost"), ("http://[bad", "localhost")):
        assert not policy.origin_allowed(origin, host), origin
    assert HostOriginPolicy("127.0.0.1", [], ["*"]).origin_allowed("http://evil.example", None)


@pytest.mark.parametrize("origin", ["http://caf\u00e9.example", "http://\u4e2d.example",
                                    "http://a\udcff.example", "http://a\x7f.example"])
def test_an_origin_that_is_not_printable_ascii_is_never_accepted(origin: str) -> None:
    # no browser sends one, and an accepted origin is echoed in the CORS headers, which
    # must stay what a browser can read
    host = origin.removeprefix("http://")
    for allowed in ([], [origin], ["*"]):
        assert not HostOriginPolicy("127.0.0.1", [host], allowed).origin_allowed(origin, host)


def test_verdicts_are_remembered_per_value_and_the_memo_stays_bounded() -> None:
    policy = HostOriginPolicy("127.0.0.1", [], [])
    for _ in range(3):  # the second and third answers come from the memo, unchanged
        assert policy.host_allowed("localhost:3000")
        assert not policy.host_allowed("evil.example")
        assert policy.origin_allowed("http://localhost:5173", "localhost:5173")
        assert not policy.origin_allowed("http://evil.example", "localhost:5173")
    for n in range(1000):  # ever-new values cannot grow it without bound
        assert not policy.host_allowed(f"evil-{n}.example")
        assert not policy.origin_allowed(f"http://evil-{n}.example", "localhost")
    assert len(policy._host_verdicts) <= 256 and len(policy._origin_verdicts) <= 256
    assert policy.host_allowed("127.0.0.1:1") and not policy.host_allowed("evil.example")


def test_refusal_names_what_was_refused() -> None:
    policy = HostOriginPolicy.from_settings(DemoSettings())
    assert policy.refusal("localhost", None) is None
    assert policy.refusal("evil.example", None) == "Forbidden: Host header not allowed"
    assert policy.refusal("localhost", "http://evil.example") == "Forbidden: Origin not allowed"
    assert policy.refusal("localhost:1", "http://localhost:2") == "Forbidden: Origin not allowed"
    assert policy.refusal("localhost:1", "http://localhost:1") is None


def test_settings_shape_and_located_errors() -> None:
    settings = parse_front_settings(DemoSettings, "demo", {"allowed_origins": ["https://a"]})
    assert (settings.host, settings.port, settings.path) == ("127.0.0.1", 4000, "/mcp")
    assert settings.max_message_bytes == DEFAULT_MAX_MESSAGE_BYTES
    with pytest.raises(ConfigError) as invalid:
        parse_front_settings(DemoSettings, "demo", {"port": 70000, "path": "mcp", "nope": 1,
                                                    "max_message_bytes": 10})
    problems = "\n".join(invalid.value.problems)
    assert invalid.value.source == "[transports.demo]"
    for located in ("transports.demo.port:", "transports.demo.path: must be an absolute URL path",
                    "transports.demo.nope: unknown setting", "transports.demo.max_message_bytes:"):
        assert located in problems


@pytest.mark.parametrize("path", ["/mcp?x=1", "/a#b", "/a b", "relative"])
def test_url_paths_must_be_plain_absolute_paths(path: str) -> None:
    with pytest.raises(ValueError, match="absolute URL path"):
        validate_url_path(path)


def test_front_url_brackets_ipv6() -> None:
    assert front_url("ws", "127.0.0.1", 3001, "/mcp") == "ws://127.0.0.1:3001/mcp"
    assert front_url("http", "::1", 80, "/") == "http://[::1]:80/"
