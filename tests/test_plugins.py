"""The plugin kernel in this process: driver lookup, hook specs, the built-in inventory."""

from __future__ import annotations

import pytest

from vmcp import drivernames
from vmcp.cache.base import CacheBackend
from vmcp.cache.memory import MemoryCache
from vmcp.plugins import (
    DriverNotFound,
    PluginError,
    PluginRecord,
    get_plugin_manager,
    inventory,
    load_driver,
)
from vmcp.routing.round_robin import RoundRobin


def test_load_driver_returns_the_builtin_classes() -> None:
    assert load_driver("caches", "memory") is MemoryCache
    assert load_driver("balancers", "round_robin") is RoundRobin
    assert issubclass(load_driver("caches", "memory"), CacheBackend)


def test_missing_driver_lists_installed_ones_and_names_its_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every package the table names is installed in this workspace, so name one that is not.
    monkeypatch.setitem(drivernames.KNOWN_PROVIDERS, ("caches", "fancy"), "vmcp-cache-fancy")
    with pytest.raises(DriverNotFound) as caught:
        load_driver("caches", "fancy")
    message = str(caught.value)
    assert "'fancy'" in message
    assert "installed: " in message and "memory" in message
    assert "provided by the package vmcp-cache-fancy" in message
    assert "not on PyPI" in message and "plugins/vmcp-cache-fancy" in message


def test_missing_driver_without_known_package_still_lists_installed() -> None:
    with pytest.raises(DriverNotFound, match=r"installed: .*round_robin") as caught:
        load_driver("balancers", "no_such_balancer")
    assert "provided by" not in str(caught.value)


def test_driver_not_found_is_a_plugin_error() -> None:
    assert issubclass(DriverNotFound, PluginError)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(PluginError, match="unknown driver kind 'cache'"):
        load_driver("cache", "memory")


def test_plugin_manager_is_cached_and_knows_every_spec() -> None:
    pm = get_plugin_manager()
    assert pm is get_plugin_manager()
    for name in ("vmcp_register_commands", "vmcp_gateway_started", "vmcp_backend_prepare"):
        assert getattr(pm.hook, name).has_spec()


def test_inventory_lists_builtins_under_vmcp() -> None:
    records = {r.name: r for r in inventory()}
    vmcp = records["vmcp"]
    assert "vmcp.caches:memory" in vmcp.drivers
    assert "vmcp.balancers:round_robin" in vmcp.drivers
    assert set(vmcp.to_dict()) == {"name", "version", "drivers", "hooks", "status"}


def test_record_to_dict_is_plain_data() -> None:
    record = PluginRecord("p", "1.0", ["vmcp.caches:x"], ["vmcp_register_commands"], "ok")
    assert record.to_dict() == {
        "name": "p",
        "version": "1.0",
        "drivers": ["vmcp.caches:x"],
        "hooks": ["vmcp_register_commands"],
        "status": "ok",
    }
