"""Inference backends (engines): the plugin interface and the built-in backends."""

from runner.backends.base import Backend, BackendSettings

__all__ = ["Backend", "BackendSettings"]
