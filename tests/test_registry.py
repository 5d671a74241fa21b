"""The plugin registry: entry points for our own plugins, clear errors, run-time registration."""

import pytest

from runner import registry
from runner.errors import PluginNotFound


def test_builtins_come_from_entry_points():
    assert {"onnxruntime", "null"} <= set(registry.names("backend"))
    assert {"single_stream", "offline"} <= set(registry.names("scenario"))
    assert "digits" in registry.names("task")
    info = registry.info("backend", "onnxruntime")
    assert info.distribution == "infersight" and info.version


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(PluginNotFound) as exc:
        registry.get("backend", "tensorflow")
    message = str(exc.value)
    assert "unknown backend 'tensorflow'" in message
    assert "null" in message and "onnxruntime" in message


def test_plugins_load_lazily_and_once():
    info = registry.info("scenario", "offline")
    first = info.load()
    assert info.load() is first
    assert first.name == "offline"


def test_register_and_unregister_a_plugin():
    class Dummy:
        name = "dummy"

    registry.register("backend", "dummy", Dummy)
    try:
        assert registry.get("backend", "dummy") is Dummy
        assert "dummy" in registry.names("backend")
    finally:
        registry.unregister("backend", "dummy")
    assert "dummy" not in registry.names("backend")


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        registry.names("gizmo")
