"""The system under test that joins a backend and a sample library; the load generator sees only it."""

from __future__ import annotations

from typing import Any

import numpy as np

from runner.backends.base import Backend
from runner.loadgen.interfaces import BatchDone, SampleLibrary, StreamQuery, SystemUnderTest, TokenDone

__all__ = ["BackendSUT"]


class BackendSUT(SystemUnderTest):
    """Gathers each query's samples from the library and runs them through the backend in batches.

    For streaming queries it also keeps each conversation's history (the last context and the
    tokens generated for it), so a later turn's context is built here, not by the load generator.
    """

    def __init__(self, backend: Backend, qsl: SampleLibrary, batch_size: int | None = None) -> None:
        self.backend, self.qsl = backend, qsl
        self.batch_size = batch_size or backend.settings.batch_size
        self.name = f"{backend.name}-sut"
        self._history: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # session -> (context, answer)

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

    def issue_stream(self, query: StreamQuery, on_token: TokenDone) -> int:
        """Run one conversation turn through `backend.run_stream`, calling `on_token()` per token.

        The context is the sample's prompt tokens for turn 0; for a later turn, the previous
        turn's context + the tokens generated for it + this sample's prompt; either way cut to
        its last `max_context_tokens` tokens. Returns the context length.
        """
        context = self.context_for(query)
        inputs = {"tokens": context, "max_new_tokens": np.array([query.max_new_tokens], dtype=np.int64)}
        answer: list[np.ndarray] = []
        keep = answer.append
        for outputs in self.backend.run_stream(inputs):
            on_token()
            keep(outputs[0])
        generated = np.concatenate(answer).astype(np.int64, copy=False) if answer else np.empty(0, np.int64)
        self._history[query.session] = (context, generated)
        return context.shape[1]

    def context_for(self, query: StreamQuery) -> np.ndarray:
        """The int64 [1, L] context of a turn (see issue_stream); L <= max_context_tokens."""
        prompt = np.asarray(self.qsl.get(np.array([query.sample_index]))["tokens"], dtype=np.int64).reshape(-1)
        if query.turn > 0:
            previous = self._history.get(query.session)
            if previous is None:
                raise ValueError(f"session {query.session} turn {query.turn}: no history (its earlier "
                                 f"turns were not issued here, or the session has ended)")
            prompt = np.concatenate([previous[0].reshape(-1), previous[1], prompt])
        return np.ascontiguousarray(prompt[-query.max_context_tokens:]).reshape(1, -1)

    def end_session(self, session: int) -> None:
        self._history.pop(session, None)

    def flush_queries(self) -> None:
        self._history.clear()
