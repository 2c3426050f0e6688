"""The TOML writer reads back equal with tomllib."""

from __future__ import annotations

import math
import tomllib

import pytest

from vmcp.tomlwrite import dumps


def test_round_trip_of_nested_tables() -> None:
    data = {
        "top": 1,
        "gateway": {"name": "vmcp", "ratio": 0.5, "on": True, "fronts": ["stdio", "http"]},
        "transports": {"stdio": {}, "http": {"port": 8080}},
        "servers": {
            "a": {"command": "x", "env": {"K": "v", "odd key": "q"}, "args": []},
        },
        "empty": {},
        "weird key.with dots": {"v": 'quote " backslash \\ newline \n tab \t del \x7f é'},
    }
    assert tomllib.loads(dumps(data)) == data


def test_none_is_left_out() -> None:
    assert tomllib.loads(dumps({"t": {"a": None, "b": 1, "c": {"d": {"e": None}}}})) == {
        "t": {"b": 1, "c": {"d": {}}}
    }


def test_deep_tables_are_inline_and_shallow_ones_are_sections() -> None:
    text = dumps({"servers": {"a": {"env": {"K": "v"}}}})
    assert "[servers.a]" in text
    assert 'env = { K = "v" }' in text


def test_special_floats() -> None:
    loaded = tomllib.loads(dumps({"a": math.inf, "b": -math.inf, "c": math.nan}))
    assert loaded["a"] == math.inf and loaded["b"] == -math.inf and math.isnan(loaded["c"])


def test_unsupported_value_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot write object"):
        dumps({"a": object()})
