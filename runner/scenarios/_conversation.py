"""Seeded multi-turn conversations for the interactive scenario (the load generator's side: no tokens).

A conversation is a session of turns; each turn names the sample whose prompt it adds, how many
tokens to generate and how long the user "thinks" before sending it. Draws, one seed per random
dimension (as LoadGen does):
  - turns per session: uniform integer in [min_turns, max_turns]       (conversation_rng_seed)
  - output tokens per turn: uniform integer in [min_output_tokens, max_output_tokens]  (same)
  - the sample of each turn: uniform over the loaded samples, with replacement (sample_index_rng_seed)
  - session arrivals: a Poisson process at session_arrival_rate per second, i.e. exponential gaps
    drawn by runner.loadgen.poisson (schedule_rng_seed); think time before turns 1.. : exponential
    with mean think_time_ms (same seed; 0: none).
Conversations are drawn strictly in session order under a lock, so session k is the same
whichever worker thread takes it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from runner.loadgen.poisson import poisson_gaps_ns

__all__ = ["Turn", "Conversation", "ConversationSource"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn: the sample whose prompt it adds, tokens to generate, pause before it (ns)."""

    sample_index: int
    max_new_tokens: int
    think_ns: int


@dataclass(frozen=True, slots=True)
class Conversation:
    """A session: its id, when it arrives (ns after the timed run starts; None: closed loop), its turns."""

    session: int
    arrival_ns: int | None
    turns: tuple[Turn, ...]


class ConversationSource:
    """Draws conversations in session order from the seeds of `settings` (InteractiveSettings).

    `next()` is thread-safe and returns None once `settings.session_count` sessions (when > 0)
    have been drawn.
    """

    def __init__(self, settings: Any, loaded: np.ndarray) -> None:
        self.s, self.loaded = settings, np.asarray(loaded, dtype=np.int64)
        self._shape = np.random.default_rng(settings.conversation_rng_seed)
        self._samples = np.random.default_rng(settings.sample_index_rng_seed)
        self._schedule = np.random.default_rng(settings.schedule_rng_seed)
        self._lock = threading.Lock()
        self._drawn, self._clock_ns = 0, 0.0

    @property
    def drawn(self) -> int:
        """Sessions drawn so far."""
        return self._drawn

    def next(self) -> Conversation | None:
        """The next conversation (session ids 0, 1, 2, ...), or None when the session count is reached."""
        with self._lock:
            if self.s.session_count and self._drawn >= self.s.session_count:
                return None
            session = self._drawn
            self._drawn += 1
            return self._draw(session)

    def _draw(self, session: int) -> Conversation:
        s = self.s
        n = int(self._shape.integers(s.min_turns, s.max_turns + 1))
        tokens = self._shape.integers(s.min_output_tokens, s.max_output_tokens + 1, size=n)
        samples = self.loaded[self._samples.integers(0, len(self.loaded), size=n)]
        arrival = None
        if s.session_arrival_rate > 0:
            self._clock_ns += float(poisson_gaps_ns(s.session_arrival_rate, 1, self._schedule)[0])
            arrival = int(self._clock_ns)
        think = np.zeros(n)
        if s.think_time_ms > 0 and n > 1:
            think[1:] = self._schedule.exponential(s.think_time_ms * 1e6, size=n - 1)
        turns = tuple(Turn(int(i), int(k), int(t)) for i, k, t in zip(samples, tokens, think, strict=True))
        return Conversation(session, arrival, turns)
