"""A task's pipeline over one or several model files, each run by its own instance of one backend.

Some tasks are more than one model call per batch: a stateful streaming model is called once per
chunk with its state carried from call to call (a voice-activity detector), a text detector's boxes
are cropped and fed to a recogniser. The task gives the Python between the calls as a `Pipeline`;
`PipelineBackend` prepares the run's backend on each model file of the variant (the card's own file
as 'main', then every part the model card lists), with the same settings, and runs each batch
through the pipeline. The run, its backend card and its settings stay those of the backend asked
for: to the load generator and the store it is that backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runner.backends.base import Backend
from runner.cards import BackendCard, ModelCard

__all__ = ["Step", "Pipeline", "PipelineBackend"]

Step = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]
"""One model call: inputs by name -> outputs in model-card order (a backend's run_batch)."""


class Pipeline(Protocol):
    """The Python a task runs around its model calls; called from the load generator's (or a worker's)
    thread, blocking until the batch is done."""

    def __call__(self, models: Mapping[str, Step], inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one batch (the sample library's inputs, samples on axis 0); outputs, samples on axis 0."""


class PipelineBackend(Backend):
    """Runs a task's pipeline with one instance of a backend per model file of the variant."""

    def __init__(self, backend: Backend, pipeline: Pipeline) -> None:
        super().__init__(backend.settings)
        self.inner, self.pipeline = backend, pipeline
        self.name, self.runtime, self.Settings = backend.name, backend.runtime, backend.Settings
        self._backends: dict[str, Backend] = {}
        self._models: dict[str, Step] = {}

    def runtime_version(self) -> str:  # type: ignore[override]
        return self.inner.runtime_version()

    def prepare(self, model: ModelCard, model_path: Path) -> None:
        self.model = model
        self._backends = {"main": self.inner}
        self.inner.prepare(model, model_path)
        for part in model.parts:
            backend = type(self.inner)(self.inner.settings)
            card = model.model_copy(update={"file": part.file, "sha256": part.sha256, "size_bytes": part.size_bytes,
                                            "operators": part.operators, "inputs": part.inputs,
                                            "outputs": part.outputs, "parts": []})
            backend.prepare(card, model_path.parent / part.file)
            self._backends[part.name] = backend
        self._models = {name: backend.run_batch for name, backend in self._backends.items()}

    def run_batch(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.pipeline(self._models, inputs)

    def teardown(self) -> None:
        for backend in self._backends.values():
            backend.teardown()
        self._backends, self._models = {}, {}

    def device(self) -> str:
        return self.inner.device()

    def execution_providers(self) -> list[str]:
        return self.inner.execution_providers()

    def effective_settings(self) -> dict[str, Any]:
        return self.inner.effective_settings()

    def card(self) -> BackendCard:
        return self.inner.card()
