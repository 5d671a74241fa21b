"""What the load generator talks to: a system under test and a sample library (LoadGen's split).

The load generator knows no model. It asks the sample library to load samples, then issues
queries (arrays of sample indices) to the system under test and timestamps them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["SampleLibrary", "SystemUnderTest", "BatchDone"]

BatchDone = Callable[[int], None]


class SampleLibrary(ABC):
    """The data side (LoadGen's QuerySampleLibrary): samples addressed by integer index.

    All methods are called on the load generator's thread and block until done.
    """

    name: str = "samples"

    @property
    @abstractmethod
    def total_sample_count(self) -> int:
        """Number of samples available (the accuracy pass uses all of them)."""

    @property
    @abstractmethod
    def performance_sample_count(self) -> int:
        """Number of samples held in memory during a performance run."""

    def load_samples(self, indices: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Bring these samples into memory before a test (LoadSamplesToRam); default: no-op."""

    def unload_samples(self, indices: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Release samples after a test (UnloadSamplesFromRam); default: no-op."""

    @abstractmethod
    def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Model inputs for these samples, stacked along the first axis (the hot path)."""


class SystemUnderTest(ABC):
    """The system side (LoadGen's SystemUnderTest)."""

    name: str = "sut"

    @abstractmethod
    def issue_query(self, sample_indices: np.ndarray, on_batch_done: BatchDone | None = None,
                    keep_outputs: bool = False) -> list[Any] | None:
        """Process one query; blocks until every sample in it has completed.

        Called on the load generator's thread. When `on_batch_done` is given, it is called with
        the number of samples just finished after each internal batch, on the same thread, so
        the load generator can timestamp partial completions (offline). With `keep_outputs`
        the per-batch outputs are returned in order (the accuracy pass); otherwise None.
        """

    def flush_queries(self) -> None:  # noqa: B027 - optional hook
        """Called once after the last query (LoadGen's FlushQueries); default: no-op."""
