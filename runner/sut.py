"""The system under test that joins a backend and a sample library; the load generator sees only it."""

from __future__ import annotations

from typing import Any

import numpy as np

from runner.backends.base import Backend
from runner.loadgen.interfaces import BatchDone, SampleLibrary, SystemUnderTest

__all__ = ["BackendSUT"]


class BackendSUT(SystemUnderTest):
    """Gathers each query's samples from the library and runs them through the backend in batches."""

    def __init__(self, backend: Backend, qsl: SampleLibrary, batch_size: int | None = None) -> None:
        self.backend, self.qsl = backend, qsl
        self.batch_size = batch_size or backend.settings.batch_size
        self.name = f"{backend.name}-sut"

    def issue_query(self, sample_indices: np.ndarray, on_batch_done: BatchDone | None = None,
                    keep_outputs: bool = False) -> list[Any] | None:
        get, run, bs = self.qsl.get, self.backend.run_batch, self.batch_size
        n = len(sample_indices)
        if n <= bs and on_batch_done is None and not keep_outputs:
            run(get(sample_indices))  # the single-stream hot path
            return None
        outputs: list[Any] | None = [] if keep_outputs else None
        for lo in range(0, n, bs):
            chunk = sample_indices[lo:lo + bs]
            result = run(get(chunk))
            if outputs is not None:
                outputs.append(result)
            if on_batch_done is not None:
                on_batch_done(len(chunk))
        return outputs
