"""The null backend: no model, outputs of the right shape filled with zeros, at once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import repeat
from pathlib import Path
from typing import ClassVar

import numpy as np

from runner.backends.base import Backend
from runner.cards import ModelCard

__all__ = ["NullBackend"]

_MAX_BATCH = 65_536


class NullBackend(Backend):
    """Answers every batch at once with zeros shaped like the model's outputs.

    Measures the runner's own overhead (compare with MLPerf LoadGen's null SUT) and lets
    scenario tests run in milliseconds. The model file is not read. It streams too: token 0,
    `max_new_tokens` times, at once.
    """

    name: ClassVar[str] = "null"
    reads_model: ClassVar[bool] = False

    def prepare(self, model: ModelCard, model_path: Path) -> None:
        self.model = model
        self._zeros = [np.zeros((_MAX_BATCH, *_static(spec.shape[1:])), dtype=spec.dtype)
                       for spec in model.outputs]
        self._one = [z[:1] for z in self._zeros]  # a one-sample batch's answer, made once


    def run_batch(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        n = len(next(iter(inputs.values())))
        return self._one if n == 1 else [z[:n] for z in self._zeros]

    def run_stream(self, inputs: Mapping[str, np.ndarray]) -> Iterator[list[np.ndarray]]:
        """Yield `max_new_tokens` items of [int64 array (1,) holding token 0], each at once."""
        yield from repeat([np.zeros(1, dtype=np.int64)], int(inputs["max_new_tokens"][0]))


def _static(dims: list[int | str]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else 1 for d in dims)
