"""SingleStream: one sample per query, the next query issued when the previous one completes.

Headline: the p90 latency, reported as MLPerf's early-stopping estimate. Latency runs from
a query's scheduled time (the previous completion, or the end of a bookkeeping pause) to
its completion, so overhead in the issuing path counts against the system.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from runner.loadgen import early_stopping
from runner.loadgen.interfaces import SystemUnderTest
from runner.loadgen.result import ScenarioResult, latency_summary
from runner.scenarios.base import Progress, Scenario, ScenarioSettings, Sink, sample_order, warm_up

__all__ = ["SingleStream", "SingleStreamSettings"]

_TICK_NS = 250_000_000      # progress and flush at most four times a second
_FLUSH_NS = 2_000_000_000   # records reach the sink at least every 2 s


class SingleStreamSettings(ScenarioSettings):
    min_query_count: int = Field(1024, gt=0, description="Minimum number of queries.")
    max_query_count: int = Field(0, ge=0, description="Stop after this many queries (0: no limit).")
    target_latency_percentile: float = Field(90.0, gt=0, lt=100, description="Percentile of the headline.")
    early_stopping_confidence: float = Field(0.99, gt=0, lt=1)


class _Loop:
    """The timed loop's state: per-query lists and the last flushed position."""

    def __init__(self) -> None:
        self.scheduled: list[int] = []
        self.issued: list[int] = []
        self.completed: list[int] = []
        self.flushed = 0
        self.orders: list[np.ndarray] = []

    def sample_indices(self, lo: int, hi: int) -> np.ndarray:
        """Sample index of queries lo..hi-1 (query i used orders[i // L][i % L])."""
        return np.concatenate(self.orders)[lo:hi]


class SingleStream(Scenario):
    name: ClassVar[str] = "single_stream"
    Settings: ClassVar[type[ScenarioSettings]] = SingleStreamSettings
    quick_settings: ClassVar[dict[str, Any]] = {"min_duration_ms": 1_000, "warmup_duration_ms": 200,
                                                 "min_query_count": 64}

    def measure(self, sut: SystemUnderTest, loaded: np.ndarray, sink: Sink | None,
                progress: Progress | None) -> ScenarioResult:
        s = self.settings
        warm_up(sut, loaded, s.warmup_duration_ms, 1)
        order = sample_order(loaded, max(s.min_query_count, 1 << 16), s.sample_index_rng_seed)
        self.timed_part_starts()
        return self._result(self._timed_loop(sut, order, loaded, sink, progress))

    def _timed_loop(self, sut: SystemUnderTest, order: np.ndarray, loaded: np.ndarray,
                    sink: Sink | None, progress: Progress | None) -> _Loop:
        s, loop, clock, issue = self.settings, _Loop(), time.perf_counter_ns, sut.issue_query
        loop.orders.append(order)
        sched_a, issued_a, done_a = loop.scheduled.append, loop.issued.append, loop.completed.append
        min_q, max_q = s.min_query_count, s.max_query_count or (1 << 62)
        start = clock()
        min_end, max_end = start + s.min_duration_ms * 1_000_000, start + s.max_duration_ms * 1_000_000
        next_tick, next_flush, scheduled, n = start + _TICK_NS, start + _FLUSH_NS, start, 0
        while True:
            for idx in order.reshape(-1, 1):
                t_issue = clock()
                issue(idx)
                t_done = clock()
                sched_a(scheduled)
                issued_a(t_issue)
                done_a(t_done)
                scheduled = t_done
                n += 1
                if (t_done >= min_end and n >= min_q) or n >= max_q or t_done >= max_end:
                    self._flush(loop, sink)
                    return loop
                if t_done >= next_tick:
                    next_tick, next_flush = self._tick(loop, sink, progress, start, next_flush)
                    scheduled = clock()  # the pause was ours, not the system's
            order = sample_order(loaded, len(order), s.sample_index_rng_seed + len(loop.orders))
            loop.orders.append(order)

    def _tick(self, loop: _Loop, sink: Sink | None, progress: Progress | None,
              start: int, next_flush: int) -> tuple[int, int]:
        now, s, n = time.perf_counter_ns(), self.settings, len(loop.completed)
        if progress:
            frac = min((now - start) / (s.min_duration_ms * 1e6), n / s.min_query_count, 1.0)
            progress(frac, f"{n:,} queries")
        if now >= next_flush:
            self._flush(loop, sink)
            next_flush = now + _FLUSH_NS
        return now + _TICK_NS, next_flush

    def _flush(self, loop: _Loop, sink: Sink | None) -> None:
        if sink is None or loop.flushed == len(loop.completed):
            return
        lo, hi = loop.flushed, len(loop.completed)
        sink(_records(loop, lo, hi))
        loop.flushed = hi

    def _result(self, loop: _Loop) -> ScenarioResult:
        s = self.settings
        rec = _records(loop, 0, len(loop.completed))
        lat = rec["completed_ns"] - rec["scheduled_ns"]
        n = len(lat)
        duration_ns = int(rec["completed_ns"][-1] - rec["scheduled_ns"][0]) if n else 0
        p = s.target_latency_percentile / 100
        estimate, needed = early_stopping.percentile_estimate(lat, p, 0.0, s.early_stopping_confidence)
        summary: dict[str, Any] = {"query_count": n, "sample_count": n, "duration_ns": duration_ns,
                                   "queries_per_second": n * 1e9 / duration_ns if duration_ns else 0.0,
                                   **latency_summary(lat),
                                   "early_stopping_min_queries": needed,
                                   "early_stopping_estimate_ms": estimate / 1e6 if estimate else None}
        summary["samples_per_second"] = summary["queries_per_second"]
        reasons = _reasons(s, n, duration_ns, needed)
        metric = f"latency_p{s.target_latency_percentile:g}_ms"
        return ScenarioResult(self.name, metric, summary["early_stopping_estimate_ms"], "ms",
                              not reasons, reasons, summary, s.to_dict(), rec)


def _records(loop: _Loop, lo: int, hi: int) -> dict[str, np.ndarray]:
    return {"sample_index": loop.sample_indices(lo, hi),
            "query_index": np.arange(lo, hi, dtype=np.int64),
            "scheduled_ns": np.asarray(loop.scheduled[lo:hi], dtype=np.int64),
            "issued_ns": np.asarray(loop.issued[lo:hi], dtype=np.int64),
            "completed_ns": np.asarray(loop.completed[lo:hi], dtype=np.int64)}


def _reasons(s: SingleStreamSettings, n: int, duration_ns: int, needed: int) -> list[str]:
    reasons = []
    if duration_ns < s.min_duration_ms * 1_000_000:
        reasons.append(f"min duration not met: ran {duration_ns / 1e9:.3f} s < min_duration_ms "
                       f"{s.min_duration_ms} ms (stopped at max_query_count or max_duration_ms)")
    if n < s.min_query_count:
        reasons.append(f"min query count not met: {n} queries < min_query_count {s.min_query_count}")
    if n < needed:
        reasons.append(f"early stopping needs at least {needed} queries for a p"
                       f"{s.target_latency_percentile:g} estimate at {s.early_stopping_confidence:.0%} "
                       f"confidence; the run issued {n}")
    return reasons
