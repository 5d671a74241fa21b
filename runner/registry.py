"""One registry for every pick-one-by-name plugin (tasks, backends, scenarios), fed by entry points.

Our built-ins are declared as entry points in pyproject.toml exactly like third-party plugins.
Entry points are read lazily (on first use of a kind) and a plugin class is imported only when
it is asked for. Tests may `register()` a plugin for the duration of a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from runner.errors import PluginNotFound

__all__ = ["KINDS", "PluginInfo", "get", "names", "plugins", "register", "unregister"]

KINDS = {"task": "infersight.tasks", "backend": "infersight.backends", "scenario": "infersight.scenarios"}


@dataclass
class PluginInfo:
    """Where a plugin comes from: its name, kind, import target, distribution and version."""

    name: str
    kind: str
    target: str
    distribution: str
    version: str
    _entry_point: metadata.EntryPoint | None = None
    _loaded: Any = None

    def load(self) -> Any:
        """Import the plugin class (once)."""
        if self._loaded is None:
            self._loaded = self._entry_point.load()
        return self._loaded


_cache: dict[str, dict[str, PluginInfo]] = {}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")


def _discover(kind: str) -> dict[str, PluginInfo]:
    _check_kind(kind)
    if kind not in _cache:
        found = {}
        for ep in metadata.entry_points(group=KINDS[kind]):
            dist = ep.dist
            found[ep.name] = PluginInfo(ep.name, kind, ep.value, dist.name if dist else "?",
                                        dist.version if dist else "?", ep)
        _cache[kind] = found
    return _cache[kind]


def plugins(kind: str) -> list[PluginInfo]:
    """All plugins of a kind, sorted by name."""
    return sorted(_discover(kind).values(), key=lambda info: info.name)


def names(kind: str) -> list[str]:
    """Known plugin names of a kind."""
    return [info.name for info in plugins(kind)]


def info(kind: str, name: str) -> PluginInfo:
    """The PluginInfo for `name`; an unknown name raises PluginNotFound listing the known ones."""
    found = _discover(kind)
    if name not in found:
        known = ", ".join(sorted(found)) or "(none installed)"
        raise PluginNotFound(f"unknown {kind} {name!r}; known {kind}s: {known}")
    return found[name]


def get(kind: str, name: str) -> Any:
    """Load and return the plugin class registered as `name`."""
    return info(kind, name).load()


def register(kind: str, name: str, obj: Any, distribution: str = "(registered at run time)",
             version: str = "0") -> None:
    """Register a plugin object directly (tests, notebooks); it shadows an entry point of that name."""
    plugin = PluginInfo(name, kind, f"{obj.__module__}:{obj.__qualname__}", distribution, version)
    plugin._loaded = obj
    _discover(kind)[name] = plugin


def unregister(kind: str, name: str) -> None:
    """Forget a plugin registered at run time (the entry points are read again on next use)."""
    _discover(kind).pop(name, None)
    _cache.pop(kind, None)
