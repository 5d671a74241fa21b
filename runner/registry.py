"""One registry for every plugin found by name (tasks, backends, scenarios, run-summary figures, task kinds),
fed by entry points.

Our built-ins are declared as entry points in pyproject.toml exactly like third-party plugins.
Entry points are read lazily (on first use of a kind) and a plugin class is imported only when
it is asked for. Tests may `register()` a plugin for the duration of a test. Plugins that are
not packaged can be named in $INFERSIGHT_EXTRA_PLUGINS ("backend:crash=my_module:CrashBackend",
several separated by ";"), which child processes inherit (a sweep's isolated cells see them too).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from runner.errors import PluginNotFound, PluginUnavailable, SettingsError

__all__ = ["KINDS", "EXTRA_ENV", "PluginInfo", "get", "names", "plugins", "register", "unregister"]

KINDS = {"task": "infersight.tasks", "backend": "infersight.backends", "scenario": "infersight.scenarios",
         "summary": "infersight.summaries", "task_kind": "infersight.task_kinds"}
EXTRA_ENV = "INFERSIGHT_EXTRA_PLUGINS"


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
        """Import the plugin class (once); PluginUnavailable if it cannot be imported here."""
        if self._loaded is None:
            try:
                self._loaded = self._entry_point.load()
            except ImportError as exc:
                raise PluginUnavailable(f"{self.kind} {self.name!r} ({self.target}) cannot be loaded on this "
                                        f"machine: {exc}") from None
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
        found.update(_extra_plugins(kind))
        _cache[kind] = found
    return _cache[kind]


def _extra_plugins(kind: str) -> dict[str, PluginInfo]:
    """Plugins of a kind named in $INFERSIGHT_EXTRA_PLUGINS ("kind:name=module:attribute;...")."""
    found = {}
    for item in filter(None, (part.strip() for part in os.environ.get(EXTRA_ENV, "").split(";"))):
        left, sep, target = item.partition("=")
        item_kind, _, name = left.strip().partition(":")
        if not sep or not name or item_kind not in KINDS or ":" not in target:
            raise SettingsError(f"${EXTRA_ENV}: {item!r}: expected KIND:NAME=MODULE:ATTRIBUTE "
                                f"with KIND one of {', '.join(KINDS)}")
        if item_kind == kind:
            target = target.strip()
            ep = metadata.EntryPoint(name=name, value=target, group=KINDS[kind])
            found[name] = PluginInfo(name, kind, target, f"${EXTRA_ENV}", "0", ep)
    return found


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
