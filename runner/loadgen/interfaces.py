"""What the load generator talks to: a system under test and a sample library (LoadGen's split).

The load generator knows no model. It asks the sample library to load samples, then issues
queries (arrays of sample indices) to the system under test and timestamps them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from runner.errors import BackendError

__all__ = ["SampleLibrary", "SystemUnderTest", "BatchDone", "TokenDone", "StreamQuery"]

BatchDone = Callable[[int], None]
TokenDone = Callable[[], None]


@dataclass(frozen=True, slots=True)
class StreamQuery:
    """One turn of a conversation, as the load generator asks for it (it never sees tokens).

    `session` names the conversation, `turn` counts from 0, `sample_index` is the sample whose
    prompt this turn adds, `max_new_tokens` how many tokens to generate, and `max_context_tokens`
    the window the context is cut to (its most recent tokens are kept).
    """

    session: int
    turn: int
    sample_index: int
    max_new_tokens: int
    max_context_tokens: int


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

    def issue_stream(self, query: StreamQuery, on_token: TokenDone) -> int:
        """Process one streaming query (a conversation turn); blocks until its last token.

        Called on one of the load generator's worker threads (several at once for different
        sessions). The system builds the turn's context itself from the session's history and
        calls `on_token()` on the calling thread as soon as each token exists, so the load
        generator timestamps it. Returns the number of tokens in the context that was fed to
        the model. Default: a clear error (this system cannot stream).
        """
        raise BackendError(f"system under test {self.name!r} cannot stream (issue_stream is not "
                           f"implemented); use a scenario without streaming")

    def end_session(self, session: int) -> None:  # noqa: B027 - optional hook
        """Forget a conversation's history (its last turn is done); default: no-op. Thread-safe."""

    def flush_queries(self) -> None:  # noqa: B027 - optional hook
        """Called once after the last query (LoadGen's FlushQueries); default: no-op."""
