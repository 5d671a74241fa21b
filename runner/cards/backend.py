"""The backend card: which inference engine, which version, on which device, with which settings.

Format version history:
  1 (2026-11): backend, plugin version, runtime version, device, providers, settings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from runner.cards._base import StrictModel

__all__ = ["BackendCard"]


class BackendCard(StrictModel):
    card_version: Literal[1] = 1
    backend: str = Field(description="Backend plugin name (onnxruntime, null, ...).")
    plugin_version: str = Field(description="Version of the distribution that provides the plugin.")
    runtime: str = Field(description="Inference runtime package, e.g. onnxruntime.")
    runtime_version: str
    device: str = Field(description="cpu, cuda:0, ...")
    execution_providers: list[str] = Field(default_factory=list, description="Providers in effect, in priority order.")
    settings: dict[str, Any] = Field(description="Effective, resolved settings (threads, optimisation level, batch size).")
