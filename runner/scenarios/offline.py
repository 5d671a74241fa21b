"""Offline: every sample in one query; the system batches them as it likes.

Headline: samples per second over the whole query (first issue to last completion). As in
LoadGen, the query holds max(min_sample_count, expected_qps x min_duration x 1.1) samples;
expected_qps comes from the settings or, when not given, from the warm-up's throughput (then
with a 1.5 margin, as a short warm-up tends to underestimate).
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from runner.loadgen.interfaces import SystemUnderTest
from runner.loadgen.result import ScenarioResult, latency_summary
from runner.scenarios.base import Progress, Scenario, ScenarioSettings, Sink, sample_order, warm_up

__all__ = ["Offline", "OfflineSettings"]

_TICK_NS = 250_000_000
_FLUSH_NS = 2_000_000_000
_MARGIN = 1.1            # LoadGen's margin over a user-given expected_qps
_MARGIN_ESTIMATED = 1.5  # more when expected_qps is the warm-up's estimate (which tends to run low)


class OfflineSettings(ScenarioSettings):
    min_sample_count: int = Field(24_576, gt=0, description="Minimum samples in the query.")
    expected_qps: float | None = Field(None, gt=0, description="Expected samples/s; sizes the query. "
                                                               "Default: measured during warm-up.")
    max_sample_count: int = Field(4_000_000, gt=0, description="Cap on the query size (memory of the "
                                                                 "per-sample log: 40 bytes a sample).")
    warmup_batch_samples: int = Field(4096, gt=0, description="Samples per warm-up query (sizes the estimate of expected_qps).")


class _Progress:
    """Timestamps each finished batch, reports progress and flushes records as they arrive."""

    def __init__(self, order: np.ndarray, start: int, sink: Sink | None, progress: Progress | None) -> None:
        self.order, self.start, self.sink, self.progress = order, start, sink, progress
        self.counts: list[int] = []
        self.times: list[int] = []
        self.issued = start
        self.flushed = 0
        self.next_tick, self.next_flush = start + _TICK_NS, start + _FLUSH_NS

    def __call__(self, k: int) -> None:
        now = time.perf_counter_ns()
        self.counts.append(k)
        self.times.append(now)
        if now >= self.next_tick:
            self.next_tick = now + _TICK_NS
            done = sum(self.counts)
            if self.progress:
                self.progress(done / len(self.order), f"{done:,}/{len(self.order):,} samples")
            if now >= self.next_flush:
                self.next_flush = now + _FLUSH_NS
                self.flush()

    def records(self, lo: int = 0) -> dict[str, np.ndarray]:
        completed = np.repeat(np.asarray(self.times, dtype=np.int64), self.counts)
        n = len(completed)
        return {"sample_index": self.order[lo:n], "query_index": np.zeros(n - lo, dtype=np.int64),
                "scheduled_ns": np.full(n - lo, self.start, dtype=np.int64),
                "issued_ns": np.full(n - lo, self.issued, dtype=np.int64),
                "completed_ns": completed[lo:]}

    def flush(self) -> None:
        if self.sink is None:
            return
        rec = self.records(self.flushed)
        if len(rec["completed_ns"]):
            self.sink(rec)
            self.flushed += len(rec["completed_ns"])


class Offline(Scenario):
    name: ClassVar[str] = "offline"
    Settings: ClassVar[type[ScenarioSettings]] = OfflineSettings
    quick_settings: ClassVar[dict[str, Any]] = {"min_duration_ms": 1_000, "warmup_duration_ms": 200,
                                                 "min_sample_count": 1_024}

    def measure(self, sut: SystemUnderTest, loaded: np.ndarray, sink: Sink | None,
                progress: Progress | None) -> ScenarioResult:
        s = self.settings
        measured = warm_up(sut, loaded, s.warmup_duration_ms, s.warmup_batch_samples)
        expected = s.expected_qps or measured
        margin = _MARGIN if s.expected_qps else _MARGIN_ESTIMATED
        count = max(s.min_sample_count, math.ceil(expected * s.min_duration_ms / 1e3 * margin))
        count = min(count, max(s.max_sample_count, s.min_sample_count))
        order = sample_order(loaded, count, s.sample_index_rng_seed)
        self.timed_part_starts()
        tracker = _Progress(order, time.perf_counter_ns(), sink, progress)
        tracker.issued = time.perf_counter_ns()
        sut.issue_query(tracker.order, on_batch_done=tracker)
        tracker.flush()
        return self._result(tracker, expected, measured)

    def _result(self, tracker: _Progress, expected: float, measured: float) -> ScenarioResult:
        s = self.settings
        rec = tracker.records()
        n = len(rec["completed_ns"])
        duration_ns = int(rec["completed_ns"].max() - tracker.start) if n else 0
        sps = n * 1e9 / duration_ns if duration_ns else 0.0
        summary: dict[str, Any] = {"query_count": 1, "sample_count": n, "duration_ns": duration_ns,
                                   "samples_per_second": sps, "batches": len(tracker.counts),
                                   "expected_qps": expected, "warmup_samples_per_second": measured,
                                   **latency_summary(rec["completed_ns"] - rec["scheduled_ns"])}
        reasons = _reasons(s, n, duration_ns, sps)
        if reasons and n >= s.max_sample_count and s.max_sample_count >= s.min_sample_count:
            reasons.append(f"the query was capped at max_sample_count {s.max_sample_count:,}; raise it "
                           f"(memory: 40 bytes a sample) or lower min_duration_ms")
        eff = {**s.to_dict(), "expected_qps": expected}
        return ScenarioResult(self.name, "samples_per_second", sps, "samples/s", not reasons, reasons,
                              summary, eff, rec)


def _reasons(s: OfflineSettings, n: int, duration_ns: int, sps: float) -> list[str]:
    reasons = []
    if duration_ns < s.min_duration_ms * 1_000_000:
        need = math.ceil(sps * s.min_duration_ms / 1e3 * _MARGIN)
        reasons.append(f"min duration not met: the query of {n:,} samples finished in "
                       f"{duration_ns / 1e9:.3f} s < min_duration_ms {s.min_duration_ms} ms; the system "
                       f"ran faster than expected_qps: set expected_qps >= {sps:,.0f} (a query of >= {need:,} samples)")
    if n < s.min_sample_count:
        reasons.append(f"min sample count not met: {n:,} samples < min_sample_count {s.min_sample_count:,}")
    return reasons
