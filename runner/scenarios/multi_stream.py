"""MultiStream: queries of N samples issued back to back, on one or several concurrent streams.

MLPerf semantics (one stream): each query holds `samples_per_query` samples (8 by default)
and the next query is issued when the previous one completes; a query's latency runs from
its scheduled time (the previous completion) to the completion of its last sample. Headline:
the p99 query latency as MLPerf's early-stopping estimate, which needs at least 662 queries
(MLPerf's min_query_count for MultiStream is 662 too).

Beyond LoadGen: `streams` > 1 runs that many streams at once, one thread each, every stream
issuing its own back-to-back queries; the headline is still the p99 over all queries. The
summary's `fairness` (see `fairness`) gives per-stream query counts and latency percentiles,
Jain's fairness index over per-stream throughput and mean latency, and the worst stream.

Threads: with streams > 1, `sut.issue_query` (so the backend's `run_batch` and the sample
library's `get`) is called from several threads at once; onnxruntime sessions allow that.
The calling thread only coordinates: progress, and flushing records to the sink (so the sink
is only ever called from the thread that called `run`).
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from runner.loadgen import early_stopping
from runner.loadgen.interfaces import SystemUnderTest
from runner.loadgen.result import ScenarioResult, latency_summary
from runner.scenarios.base import Progress, Scenario, ScenarioSettings, Sink, sample_order, warm_up

__all__ = ["MultiStream", "MultiStreamSettings", "fairness", "jain_index"]

_TICK_S = 0.25              # progress at most four times a second
_FLUSH_NS = 2_000_000_000   # records reach the sink at least every 2 s
_BLOCK_SAMPLES = 32_768     # sample orders are drawn per stream in blocks of about this many samples


class MultiStreamSettings(ScenarioSettings):
    samples_per_query: int = Field(8, ge=1, description="Samples in each query (MLPerf's "
                                                         "multi_stream_samples_per_query).")
    streams: int = Field(1, ge=1, le=256, description="Concurrent streams (threads), each issuing its own "
                                                      "back-to-back queries; 1 is MLPerf's MultiStream.")
    min_query_count: int = Field(662, gt=0, description="Minimum number of queries over all streams.")
    max_query_count: int = Field(0, ge=0, description="Stop after this many queries over all streams (0: no limit).")
    target_latency_percentile: float = Field(99.0, gt=0, lt=100, description="Percentile of the headline.")
    early_stopping_confidence: float = Field(0.99, gt=0, lt=1)


class _Stream:
    """One stream's log: (query index, scheduled, issued, completed) per query, appended by its thread.

    Its i-th query used row i of its sample orders (blocks of shape (B, samples_per_query)).
    """

    def __init__(self, stream_id: int, block: int) -> None:
        self.id, self.block = stream_id, block
        self.queries: list[tuple[int, int, int, int]] = []
        self.orders: list[np.ndarray] = []
        self.flushed = 0
        self.error: BaseException | None = None

    def next_block(self, loaded: np.ndarray, spq: int, seed: int) -> np.ndarray:
        """Draw the next block of sample orders (seeded by stream and block number)."""
        state = np.random.SeedSequence([seed, self.id, len(self.orders)]).generate_state(1, np.uint64)
        order = sample_order(loaded, self.block * spq, int(state[0])).reshape(self.block, spq)
        self.orders.append(order)
        return order

    def sample_rows(self, lo: int, hi: int) -> np.ndarray:
        """Sample indices of this stream's queries lo..hi-1, one row per query."""
        if hi <= lo:
            return np.empty((0, self.orders[0].shape[1] if self.orders else 0), dtype=np.int64)
        first = lo // self.block
        rows = np.concatenate(self.orders[first:(hi - 1) // self.block + 1])
        return rows[lo - first * self.block:hi - first * self.block]


class _Shared:
    """What the stream threads share: query counters (atomic under the GIL), stop flag, limits."""

    def __init__(self, s: MultiStreamSettings) -> None:
        self.claimed, self.completed = itertools.count(), itertools.count(1)
        self.stop = threading.Event()
        self.min_ns, self.max_ns = s.min_duration_ms * 1_000_000, s.max_duration_ms * 1_000_000
        self.min_q, self.max_q = s.min_query_count, s.max_query_count or (1 << 62)


class MultiStream(Scenario):
    name: ClassVar[str] = "multi_stream"
    Settings: ClassVar[type[ScenarioSettings]] = MultiStreamSettings
    quick_settings: ClassVar[dict[str, Any]] = {"min_duration_ms": 1_000, "warmup_duration_ms": 200,
                                                 "min_query_count": 662}

    def measure(self, sut: SystemUnderTest, loaded: np.ndarray, sink: Sink | None,
                progress: Progress | None) -> ScenarioResult:
        s = self.settings
        warm_up(sut, loaded, s.warmup_duration_ms, s.samples_per_query)
        block = max(_BLOCK_SAMPLES // s.samples_per_query, 1)
        streams = [_Stream(j, block) for j in range(s.streams)]
        for st in streams:
            st.next_block(loaded, s.samples_per_query, s.sample_index_rng_seed)
        self.timed_part_starts()
        self._drive(sut, loaded, streams, sink, progress)
        return self._result(streams)

    def _drive(self, sut: SystemUnderTest, loaded: np.ndarray, streams: list[_Stream], sink: Sink | None,
               progress: Progress | None) -> None:
        """Run every stream on its own thread; report progress and flush from this one until they stop."""
        start = time.perf_counter_ns()
        shared = _Shared(self.settings)
        threads = [threading.Thread(target=self._stream_thread, args=(sut, loaded, st, shared),
                                    name=f"multi_stream-{st.id}", daemon=True) for st in streams]
        for t in threads:
            t.start()
        try:
            next_flush = start + _FLUSH_NS
            while not shared.stop.wait(_TICK_S):
                now = time.perf_counter_ns()
                self._progress(streams, progress, now - start)
                if now >= next_flush:
                    _flush(streams, sink)
                    next_flush = now + _FLUSH_NS
        finally:
            shared.stop.set()
            for t in threads:
                t.join()
        errors = [st.error for st in streams if st.error is not None]
        if errors:
            raise errors[0]
        _flush(streams, sink)

    def _stream_thread(self, sut: SystemUnderTest, loaded: np.ndarray, st: _Stream, sh: _Shared) -> None:
        """Body of one stream's thread: issue queries until a limit is reached; any stop ends every stream."""
        try:
            self._issue(sut, loaded, st, sh)
        except BaseException as exc:  # noqa: BLE001 - handed to the coordinating thread, which re-raises
            st.error = exc
        finally:
            sh.stop.set()

    def _issue(self, sut: SystemUnderTest, loaded: np.ndarray, st: _Stream, sh: _Shared) -> None:
        s, clock, issue, append = self.settings, time.perf_counter_ns, sut.issue_query, st.queries.append
        stopped, claim, complete = sh.stop.is_set, sh.claimed.__next__, sh.completed.__next__
        order, scheduled = st.orders[0], clock()
        # durations count from this stream's first scheduled time, so the run's span (first scheduled
        # to last completion over all streams) is at least min_duration when a stream stops on it
        min_q, max_q, min_end, max_end = sh.min_q, sh.max_q, scheduled + sh.min_ns, scheduled + sh.max_ns
        while True:
            for row in order:
                if stopped():
                    return
                k = claim()
                if k >= max_q:
                    return
                t_issue = clock()
                issue(row)
                t_done = clock()
                append((k, scheduled, t_issue, t_done))
                scheduled = t_done
                n = complete()
                if t_done >= max_end or (t_done >= min_end and n >= min_q):
                    return
            order = st.next_block(loaded, s.samples_per_query, s.sample_index_rng_seed)
            scheduled = clock()  # drawing the block was ours, not the system's

    def _progress(self, streams: list[_Stream], progress: Progress | None, elapsed_ns: int) -> None:
        if progress is None:
            return
        s, n = self.settings, sum(len(st.queries) for st in streams)
        progress(min(elapsed_ns / (s.min_duration_ms * 1e6), n / s.min_query_count, 1.0),
                 f"{n:,} queries on {len(streams)} stream{'s' if len(streams) > 1 else ''}")

    def _result(self, streams: list[_Stream]) -> ScenarioResult:
        s = self.settings
        table, stream_id, rows = _queries([(st, 0, len(st.queries)) for st in streams])
        _, scheduled, _, completed = table.T
        lat = completed - scheduled
        n = len(lat)
        duration_ns = int(completed.max() - scheduled.min()) if n else 0
        estimate, needed = early_stopping.percentile_estimate(lat, s.target_latency_percentile / 100, 0.0,
                                                              s.early_stopping_confidence)
        qps = n * 1e9 / duration_ns if duration_ns else 0.0
        summary: dict[str, Any] = {
            "query_count": n, "sample_count": n * s.samples_per_query, "samples_per_query": s.samples_per_query,
            "streams": s.streams, "duration_ns": duration_ns, "queries_per_second": qps,
            "samples_per_second": qps * s.samples_per_query, **latency_summary(lat),
            "early_stopping_min_queries": needed,
            "early_stopping_estimate_ms": estimate / 1e6 if estimate is not None else None,
            "fairness": fairness(lat, stream_id, scheduled, completed, s.streams)}
        reasons = _reasons(s, n, duration_ns, needed)
        metric = f"latency_p{s.target_latency_percentile:g}_ms"
        return ScenarioResult(self.name, metric, summary["early_stopping_estimate_ms"], "ms", not reasons,
                              reasons, summary, s.to_dict(), _expand(table, stream_id, rows))


def _queries(parts: list[tuple[_Stream, int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Queries lo..hi-1 of each stream, by query index: (index, scheduled, issued, completed), stream, samples."""
    table = [np.asarray(st.queries[lo:hi], dtype=np.int64).reshape(-1, 4) for st, lo, hi in parts]
    stream_id = [np.full(hi - lo, st.id, dtype=np.int64) for st, lo, hi in parts]
    rows = [st.sample_rows(lo, hi) for st, lo, hi in parts]
    merged = np.concatenate(table)
    by_index = np.argsort(merged[:, 0], kind="stable")
    return merged[by_index], np.concatenate(stream_id)[by_index], np.concatenate(rows)[by_index]


def _expand(table: np.ndarray, stream_id: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample records (one row per sample, sharing its query's timestamps) plus stream_id."""
    spq = rows.shape[1]
    rep = lambda column: np.repeat(column, spq)  # noqa: E731
    return {"sample_index": rows.reshape(-1), "query_index": rep(table[:, 0]), "scheduled_ns": rep(table[:, 1]),
            "issued_ns": rep(table[:, 2]), "completed_ns": rep(table[:, 3]), "stream_id": rep(stream_id)}


def _flush(streams: list[_Stream], sink: Sink | None) -> None:
    """Send every stream's queries not yet flushed to the sink (called by the coordinating thread only)."""
    parts = [(st, st.flushed, len(st.queries)) for st in streams]
    if sink is None or all(hi == lo for _, lo, hi in parts):
        return
    sink(_expand(*_queries(parts)))
    for st, _, hi in parts:
        st.flushed = hi


def jain_index(values: Any) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2) of non-negative allocations x.

    Jain, Chiu and Hawe, "A Quantitative Measure of Fairness and Discrimination for Resource
    Allocation in Shared Computer Systems", DEC-TR-301 (1984): 1 when every x is equal, k/n when
    k of n get equal shares and the rest nothing, 1/n at worst. None for no values or all zeros.
    """
    x = np.asarray(values, dtype=np.float64)
    squares = float(np.sum(x * x))
    if x.size == 0 or squares == 0.0:
        return None
    return float(np.sum(x)) ** 2 / (x.size * squares)


def fairness(latencies_ns: np.ndarray, stream_id: np.ndarray, scheduled_ns: np.ndarray,
             completed_ns: np.ndarray, streams: int) -> dict[str, Any]:
    """The fairness collector: how evenly `streams` concurrent streams were served.

    Per stream (ids 0..streams-1; a stream with no query is listed with zeros): query count,
    throughput (its queries over its own span, first scheduled to last completion), mean and
    p50/p90/p99 latency (LoadGen's percentile convention, `latency_summary`). Overall: Jain's
    index (`jain_index`) over per-stream throughput and over per-stream mean latency; the worst
    stream (highest p99) and the best (lowest p99) and the ratio of their p99s.
    """
    per_stream = [_stream_figures(j, latencies_ns[stream_id == j], scheduled_ns[stream_id == j],
                                  completed_ns[stream_id == j]) for j in range(streams)]
    served = [p for p in per_stream if p["query_count"]]
    out: dict[str, Any] = {
        "per_stream": per_stream,
        "jain_index_throughput": jain_index([p["queries_per_second"] for p in per_stream]),
        "jain_index_mean_latency": jain_index([p["latency_mean_ms"] for p in served])}
    if served:
        worst = max(served, key=lambda p: p["latency_p99_ms"])
        best = min(served, key=lambda p: p["latency_p99_ms"])
        out.update(worst_stream=worst["stream"], worst_p99_ms=worst["latency_p99_ms"], best_stream=best["stream"],
                   best_p99_ms=best["latency_p99_ms"],
                   worst_to_best_p99=worst["latency_p99_ms"] / best["latency_p99_ms"] if best["latency_p99_ms"] else None)
    return out


def _stream_figures(stream: int, lat: np.ndarray, scheduled: np.ndarray, completed: np.ndarray) -> dict[str, Any]:
    n = len(lat)
    span = int(completed.max() - scheduled.min()) if n else 0
    figures = latency_summary(lat)
    return {"stream": stream, "query_count": n, "queries_per_second": n * 1e9 / span if span else 0.0,
            **{k: figures.get(k) for k in ("latency_mean_ms", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms")}}


def _reasons(s: MultiStreamSettings, n: int, duration_ns: int, needed: int) -> list[str]:
    reasons = []
    if duration_ns < s.min_duration_ms * 1_000_000:
        reasons.append(f"min duration not met: ran {duration_ns / 1e9:.3f} s < min_duration_ms "
                       f"{s.min_duration_ms} ms (stopped at max_query_count or max_duration_ms)")
    if n < s.min_query_count:
        reasons.append(f"min query count not met: {n} queries (of {s.samples_per_query} samples, over "
                       f"{s.streams} stream{'s' if s.streams > 1 else ''}) < min_query_count {s.min_query_count}")
    if n < needed:
        reasons.append(f"early stopping needs at least {needed} queries for a p{s.target_latency_percentile:g} "
                       f"estimate at {s.early_stopping_confidence:.0%} confidence; the run issued {n}")
    return reasons
