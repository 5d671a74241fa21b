"""The backend (inference engine) plugin interface.

Lifecycle: `Backend(settings)` -> `prepare(model_card, model_path)` -> `run_batch` / `run_stream`
any number of times -> `teardown()`. Every method blocks until done; `run_batch` is the hot path and
must not allocate more than it needs. `prepare` and `teardown` run on the load generator's thread;
concurrent scenarios (server, multi_stream with several streams, interactive) call `run_batch` and
`run_stream` from several worker threads at once, so a backend keeps per-thread state where its
runtime needs it (an OpenVINO infer request serves one thread at a time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from runner.cards import BackendCard, ModelCard
from runner.cards._base import StrictModel
from runner.cards._compat import omit_added_defaults
from runner.cpus import format_cpus, parse_cpus
from runner.errors import BackendError, SettingsError

__all__ = ["Backend", "BackendSettings", "distribution_version"]


class BackendSettings(StrictModel):
    """Settings every backend understands.

    `cli_aliases` maps the command line's backend shortcuts (--threads, --provider, --batch-size) to this
    backend's own setting; a backend declares those it has (runner.backends.aliases), every other setting
    is given by name with --backend-set KEY=VALUE.
    """

    cli_aliases: ClassVar[dict[str, str]] = {"batch_size": "batch_size"}

    batch_size: int = Field(32, ge=1, le=65_536, description="Samples per inference call (offline batching).")
    cpus: str | None = Field(None, description="CPUs the backend's own threads are kept on (0, 0-2, 0,2): the "
                                               "runner pins the thread that prepares the model to them, so every "
                                               "thread the backend starts inherits them (default: the run's CPUs; "
                                               "the server scenario's isolation sets it).")

    @field_validator("cpus")
    @classmethod
    def _cpu_list(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return format_cpus(parse_cpus(value))
        except SettingsError as exc:
            raise ValueError(str(exc).removeprefix("--cpus ")) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict; `cpus` (added later) is left out while unset, so earlier backend cards hash as before."""
        return omit_added_defaults(self, super().to_dict(), ("cpus",))


class Backend(ABC):
    """An inference engine plugin (onnxruntime, ...): runs a model file on a device."""

    name: ClassVar[str]
    runtime: ClassVar[str] = ""
    reads_model: ClassVar[bool] = True  # False for backends that never run the model file (null)
    Settings: ClassVar[type[BackendSettings]] = BackendSettings

    def __init__(self, settings: BackendSettings | None = None) -> None:
        self.settings = settings or self.Settings()
        self.model: ModelCard | None = None

    @classmethod
    def runtime_version(cls) -> str:
        """Version of the inference runtime package this backend drives."""
        return distribution_version(cls.runtime) if cls.runtime else "n/a"

    @classmethod
    def check_available(cls, settings: BackendSettings) -> None:
        """Raise SettingsError if this machine cannot run these settings (a missing device or provider).

        Cheap and loads no model: a sweep calls it for every cell before anything runs and skips
        the cells it refuses, with this message as the reason.
        """
        return None

    @abstractmethod
    def prepare(self, model: ModelCard, model_path: Path) -> None:
        """Load the model file; raise ModelFileError if it is missing or unreadable."""

    @abstractmethod
    def run_batch(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch (inputs stacked on axis 0); return the outputs in model-card order."""

    def run_stream(self, inputs: Mapping[str, np.ndarray]) -> Iterator[list[np.ndarray]]:
        """Generate outputs step by step (streaming generation); not every backend can."""
        raise BackendError(f"backend {self.name!r} cannot stream (run_stream is not implemented); "
                           f"use a scenario without streaming or a backend that streams")

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Release the model and its resources."""

    def device(self) -> str:
        """The device the model runs on."""
        return "cpu"

    def execution_providers(self) -> list[str]:
        """Execution providers in effect, in priority order (empty if not applicable)."""
        return []

    def effective_settings(self) -> dict[str, Any]:
        """Settings with every default resolved to the value actually used."""
        return self.settings.to_dict()

    def card(self) -> BackendCard:
        """The backend card of this backend as prepared."""
        return BackendCard(backend=self.name, plugin_version=distribution_version("infersight"),
                           runtime=self.runtime or "none", runtime_version=self.runtime_version(),
                           device=self.device(), execution_providers=self.execution_providers(),
                           settings=self.effective_settings())


def distribution_version(name: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"
