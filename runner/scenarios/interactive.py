"""Interactive: streaming generation in multi-turn conversations; TTFT and TPOT against p99 bounds.

`concurrency` worker threads each take the next seeded conversation (runner.scenarios._conversation)
and send its turns one after another through `SystemUnderTest.issue_stream`, which calls back per
token so each token is timestamped here; the system keeps each session's context (it grows turn
by turn). Sessions arrive closed-loop (a worker starts the next session when its last one ends)
or, with session_arrival_rate > 0, as a Poisson process served first come, first served by the
workers (a session waiting for a free worker counts that wait in its first TTFT).

Per request (one turn), timed from its scheduled time (arrival, or the previous turn's completion
+ think time): TTFT = first token - scheduled; latency = completed - scheduled;
TPOT = (latency - TTFT) / (tokens - 1) for requests of 2+ tokens; the inter-token latencies are
the gaps between consecutive token timestamps. Validity: p99 TTFT <= ttft_bound_ms and p99 TPOT
<= tpot_bound_ms, each shown by MLPerf early stopping (runner.loadgen.early_stopping), plus min
duration and min query count. Headline: output tokens per second over the run (throughput under
the latency bounds, as MLPerf's LLM server scenario reports); the TTFT/TPOT percentiles are in
the summary. Perf log: one row per request with first_token_ns, output_tokens and stream_id (the
session).
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, model_validator

from runner.loadgen import early_stopping
from runner.loadgen.interfaces import StreamQuery, SystemUnderTest
from runner.loadgen.result import ScenarioResult, latency_summary, loadgen_percentile
from runner.scenarios._conversation import Conversation, ConversationSource
from runner.scenarios.base import Progress, Scenario, ScenarioSettings, Sink

__all__ = ["Interactive", "InteractiveSettings", "stream_figures", "inter_token_gaps", "bound_check",
           "validity_reasons"]

_TICK_S = 0.25          # progress at most four times a second
_FLUSH_NS = 2_000_000_000  # records reach the sink at least every 2 s
# a row per request: sample, query, session, turn, context tokens, scheduled, issued, first token, completed, tokens
_COLUMNS = ("sample_index", "query_index", "stream_id", "turn", "context_tokens", "scheduled_ns", "issued_ns",
            "first_token_ns", "completed_ns", "output_tokens")
_LOGGED = ("sample_index", "query_index", "scheduled_ns", "issued_ns", "completed_ns", "first_token_ns",
           "output_tokens", "stream_id")


class InteractiveSettings(ScenarioSettings):
    """Interactive settings; default bounds are MLPerf Inference v4.1 llama2-70b server's (2 s, 200 ms)."""

    ttft_bound_ms: float = Field(2000.0, gt=0, description="Bound on p99 time to first token.")
    tpot_bound_ms: float = Field(200.0, gt=0, description="Bound on p99 time per output token.")
    target_latency_percentile: float = Field(99.0, gt=0, lt=100, description="Percentile the bounds apply to.")
    early_stopping_confidence: float = Field(0.99, gt=0, lt=1)
    min_query_count: int = Field(1024, gt=0, description="Minimum number of requests (turns).")
    max_query_count: int = Field(0, ge=0, description="Stop after this many requests (0: no limit).")
    concurrency: int = Field(1, ge=1, le=1024, description="Sessions in flight at once (worker threads).")
    session_arrival_rate: float = Field(0.0, ge=0, description="Poisson session arrivals per second; "
                                                                "0: closed loop (next session when a worker is free).")
    session_count: int = Field(0, ge=0, description="Run exactly this many sessions (0: as many as the minimums need).")
    min_turns: int = Field(1, ge=1, description="Fewest turns in a session (uniform in [min_turns, max_turns]).")
    max_turns: int = Field(4, ge=1, description="Most turns in a session.")
    min_output_tokens: int = Field(16, ge=1, description="Fewest tokens generated in a turn (uniform).")
    max_output_tokens: int = Field(64, ge=1, description="Most tokens generated in a turn.")
    think_time_ms: float = Field(0.0, ge=0, description="Mean think time before turns 1.. (exponential; 0: none).")
    max_context_tokens: int = Field(512, ge=1, description="Context window: a turn's context keeps its last tokens.")
    conversation_rng_seed: int = Field(20261201, ge=0, description="Seed of turns per session and tokens per turn.")

    @model_validator(mode="after")
    def _ranges(self) -> "InteractiveSettings":
        for lo, hi in (("min_turns", "max_turns"), ("min_output_tokens", "max_output_tokens")):
            if getattr(self, hi) < getattr(self, lo):
                raise ValueError(f"{hi} ({getattr(self, hi)}) is below {lo} ({getattr(self, lo)})")
        return self


def stream_figures(rec: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-request TTFT, latency (ns) and, for requests of 2+ tokens, TPOT (ns per token).

    TTFT = first_token - scheduled; latency = completed - scheduled;
    TPOT = (latency - TTFT) / (output_tokens - 1) (MLPerf's definition).
    """
    ttft = rec["first_token_ns"] - rec["scheduled_ns"]
    latency = rec["completed_ns"] - rec["scheduled_ns"]
    multi = rec["output_tokens"] > 1
    tpot = (latency[multi] - ttft[multi]) / (rec["output_tokens"][multi] - 1)
    return {"ttft_ns": ttft, "latency_ns": latency, "tpot_ns": tpot}


def inter_token_gaps(token_times_ns: list[int] | np.ndarray) -> np.ndarray:
    """Inter-token latencies of one request: the gaps between consecutive token timestamps (ns)."""
    return np.diff(np.asarray(token_times_ns, dtype=np.int64))


def bound_check(values_ns: np.ndarray, bound_ns: float, p: float, confidence: float) -> tuple[int, int, bool]:
    """(over-bound count t, requests early stopping needs with t over, whether the p-th percentile is shown in bound)."""
    over, n = int(np.count_nonzero(values_ns > bound_ns)), len(values_ns)
    needed = early_stopping.min_queries(over, p, 0.0, confidence)
    return over, needed, early_stopping.passes(n - over, over, p, 0.0, confidence)


class _Shared:
    """What the worker threads share: rows and gaps (list.append is atomic), the stop flag, errors."""

    def __init__(self, s: InteractiveSettings, start: int) -> None:
        self.rows: list[tuple[int, ...]] = []
        self.gaps: list[np.ndarray] = []
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.issued = itertools.count()  # next() is atomic: query numbers in issue order
        self.start, self.flushed = start, 0
        self.max_end = start + s.max_duration_ms * 1_000_000
        self.max_q = s.max_query_count or (1 << 62)
        # with a session count the run ends when its sessions are done (or at max_duration_ms)
        self.min_end = self.max_end if s.session_count else start + s.min_duration_ms * 1_000_000
        self.min_q = 0 if s.session_count else s.min_query_count

    def check(self, now: int) -> None:
        """After a completion at `now`: tell every worker to stop once the minimums are met or time is up."""
        if (now >= self.min_end and len(self.rows) >= self.min_q) or now >= self.max_end:
            self.stop.set()


class Interactive(Scenario):
    name: ClassVar[str] = "interactive"
    Settings: ClassVar[type[ScenarioSettings]] = InteractiveSettings
    quick_settings: ClassVar[dict[str, Any]] = {"min_duration_ms": 1_000, "warmup_duration_ms": 200,
                                                 "min_query_count": 459}
    streaming: ClassVar[bool] = True  # needs Backend.run_stream: runner.run checks before anything is written

    def measure(self, sut: SystemUnderTest, loaded: np.ndarray, sink: Sink | None,
                progress: Progress | None) -> ScenarioResult:
        s = self.settings
        _warm_up(sut, loaded, s)
        source = ConversationSource(s, loaded)
        self.timed_part_starts()
        shared = _Shared(s, time.perf_counter_ns())
        threads = [threading.Thread(target=self._worker, args=(sut, source, shared), daemon=True,
                                    name=f"interactive-{i}") for i in range(s.concurrency)]
        for t in threads:
            t.start()
        self._monitor(threads, shared, source, sink, progress)
        return self._result(shared)

    def _worker(self, sut: SystemUnderTest, source: ConversationSource, shared: _Shared) -> None:
        """One worker thread: whole conversations, one after another, until told to stop or out of sessions."""
        try:
            while not shared.stop.is_set():
                conv = source.next()
                if conv is None:
                    return
                try:
                    self._conversation(sut, conv, shared)
                finally:
                    sut.end_session(conv.session)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            shared.errors.append(exc)
            shared.stop.set()

    def _conversation(self, sut: SystemUnderTest, conv: Conversation, shared: _Shared) -> None:
        """Send a session's turns in order: each scheduled at the previous completion + think time."""
        window = self.settings.max_context_tokens
        scheduled = time.perf_counter_ns() if conv.arrival_ns is None else shared.start + conv.arrival_ns
        for turn, step in enumerate(conv.turns):
            scheduled += step.think_ns
            if _wait_until(scheduled, shared.stop):
                return
            number = next(shared.issued)
            if number >= shared.max_q:
                shared.stop.set()
                return
            query = StreamQuery(conv.session, turn, step.sample_index, step.max_new_tokens, window)
            scheduled = _issue(sut, query, number, scheduled, shared)

    def _monitor(self, threads: list[threading.Thread], shared: _Shared, source: ConversationSource,
                 sink: Sink | None, progress: Progress | None) -> None:
        """The calling thread: progress, incremental flushes and the duration limit, until the workers end."""
        next_flush = shared.start + _FLUSH_NS
        try:
            for t in threads:
                while t.is_alive():
                    t.join(_TICK_S)
                    now = time.perf_counter_ns()
                    if now >= shared.max_end:  # workers may all be waiting for arrivals
                        shared.stop.set()
                    if progress:
                        progress(*self._progress(shared, source, now))
                    if now >= next_flush:
                        _flush(shared, sink)
                        next_flush = now + _FLUSH_NS
        except BaseException:
            shared.stop.set()
            for t in threads:
                t.join()
            raise
        if shared.errors:
            raise shared.errors[0]
        _flush(shared, sink)

    def _progress(self, shared: _Shared, source: ConversationSource, now: int) -> tuple[float, str]:
        s, n = self.settings, len(shared.rows)
        if s.session_count:
            frac = source.drawn / s.session_count
        else:
            frac = min((now - shared.start) / (s.min_duration_ms * 1e6), n / s.min_query_count)
        return min(frac, 1.0), f"{n:,} requests, {source.drawn:,} sessions"

    def _result(self, shared: _Shared) -> ScenarioResult:
        s = self.settings
        table = _table(shared.rows, 0, len(shared.rows))
        rec = {name: table[name] for name in _LOGGED}
        gaps = np.concatenate(shared.gaps) if shared.gaps else np.empty(0, dtype=np.int64)
        figures = stream_figures(rec)
        summary = _summary(s, table, figures, gaps, shared.start)
        reasons = validity_reasons(s, summary, figures)
        return ScenarioResult(self.name, "tokens_per_second", summary["tokens_per_second"], "tokens/s",
                              not reasons, reasons, summary, s.to_dict(), rec)


def _issue(sut: SystemUnderTest, query: StreamQuery, number: int, scheduled: int, shared: _Shared) -> int:
    """Issue one streaming query, timestamp its tokens, record it; return its completion time."""
    clock = time.perf_counter_ns
    times: list[int] = []
    append = times.append
    issued = clock()
    context = sut.issue_stream(query, lambda: append(clock()))
    done = clock()
    shared.rows.append((query.sample_index, number, query.session, query.turn, context, scheduled, issued,
                        times[0] if times else done, done, len(times)))
    if len(times) > 1:
        shared.gaps.append(inter_token_gaps(times))
    shared.check(done)
    return done


def _wait_until(when_ns: int, stop: threading.Event) -> bool:
    """Sleep until `when_ns` (perf_counter_ns); True if the run was told to stop meanwhile."""
    delay = when_ns - time.perf_counter_ns()
    return stop.wait(delay / 1e9) if delay > 0 else stop.is_set()


def _warm_up(sut: SystemUnderTest, loaded: np.ndarray, s: InteractiveSettings) -> None:
    """Untimed single-turn requests for warmup_duration_ms (at least one unless it is 0)."""
    if s.warmup_duration_ms == 0:
        return
    end, i = time.perf_counter_ns() + s.warmup_duration_ms * 1_000_000, 0
    while i == 0 or time.perf_counter_ns() < end:
        session = -1 - i  # negative ids: never a timed session
        query = StreamQuery(session, 0, int(loaded[i % len(loaded)]), s.min_output_tokens, s.max_context_tokens)
        sut.issue_stream(query, _nothing)
        sut.end_session(session)
        i += 1


def _nothing() -> None:
    """The warm-up's token callback: nothing is timed."""


def _table(rows: list[tuple[int, ...]], lo: int, hi: int) -> dict[str, np.ndarray]:
    """Rows lo..hi-1 as int64 columns named by _COLUMNS."""
    arr = np.array(rows[lo:hi], dtype=np.int64).reshape(-1, len(_COLUMNS))
    return {name: np.ascontiguousarray(arr[:, i]) for i, name in enumerate(_COLUMNS)}


def _flush(shared: _Shared, sink: Sink | None) -> None:
    """Hand the rows recorded since the last flush to the sink (the perf log's columns only)."""
    hi = len(shared.rows)
    if sink is None or hi == shared.flushed:
        return
    table = _table(shared.rows, shared.flushed, hi)
    sink({name: table[name] for name in _LOGGED})
    shared.flushed = hi


def _renamed(summary: dict[str, float], prefix: str) -> dict[str, float]:
    """latency_summary's keys with 'latency' replaced by `prefix` (ttft, tpot, itl)."""
    return {prefix + key[len("latency"):]: value for key, value in summary.items()}


def _summary(s: InteractiveSettings, table: dict[str, np.ndarray], figures: dict[str, np.ndarray],
             gaps: np.ndarray, start: int) -> dict[str, Any]:
    """The run's figures; its duration runs from the timed part's start to the last completion."""
    n, tokens = len(table["completed_ns"]), int(table["output_tokens"].sum())
    duration_ns = int(table["completed_ns"].max() - start) if n else 0
    p, conf = s.target_latency_percentile / 100, s.early_stopping_confidence
    out: dict[str, Any] = {"query_count": n, "sample_count": n, "session_count": len(np.unique(table["stream_id"])),
                           "duration_ns": duration_ns, "output_tokens": tokens,
                           "output_tokens_mean": tokens / n if n else 0.0,
                           "tokens_per_second": tokens * 1e9 / duration_ns if duration_ns else 0.0,
                           "requests_per_second": n * 1e9 / duration_ns if duration_ns else 0.0,
                           **latency_summary(figures["latency_ns"]), **_renamed(latency_summary(figures["ttft_ns"]), "ttft"),
                           **_renamed(latency_summary(figures["tpot_ns"]), "tpot"), **_renamed(latency_summary(gaps), "itl")}
    out["queries_per_second"] = out["requests_per_second"]
    for name in ("ttft", "tpot"):
        over, needed, _ = bound_check(figures[f"{name}_ns"], getattr(s, f"{name}_bound_ms") * 1e6, p, conf)
        out[f"{name}_over_bound"], out[f"{name}_early_stopping_min_queries"] = over, needed
    context, turn = table["context_tokens"], table["turn"]
    out["context_tokens_mean"] = float(context.mean()) if n else 0.0
    out["context_tokens_max"] = int(context.max()) if n else 0
    out["context_tokens_by_turn"] = {str(t): float(context[turn == t].mean()) for t in np.unique(turn)}
    return out


def validity_reasons(s: InteractiveSettings, summary: dict[str, Any], figures: dict[str, np.ndarray]) -> list[str]:
    """Why a run is INVALID, with the numbers (empty: VALID): min duration, min query count, both bounds.

    `summary` needs query_count and duration_ns; `figures` is `stream_figures` of the run's records.
    """
    reasons, n, duration_ns = [], summary["query_count"], summary["duration_ns"]
    if duration_ns < s.min_duration_ms * 1_000_000:
        reasons.append(f"min duration not met: ran {duration_ns / 1e9:.3f} s < min_duration_ms {s.min_duration_ms} ms "
                       f"(stopped at max_query_count, session_count or max_duration_ms)")
    if n < s.min_query_count:
        reasons.append(f"min query count not met: {n:,} requests < min_query_count {s.min_query_count:,}")
    for name in ("ttft", "tpot"):
        reason = _bound_reason(s, name, figures[f"{name}_ns"])
        if reason:
            reasons.append(reason)
    return reasons


def _bound_reason(s: InteractiveSettings, name: str, values: np.ndarray) -> str | None:
    """Why the p-th percentile of TTFT or TPOT is not shown within its bound, with the arithmetic (None: it is)."""
    label, bound = name.upper(), getattr(s, f"{name}_bound_ms")
    pct, conf, n = s.target_latency_percentile, s.early_stopping_confidence, len(values)
    if n == 0:
        what = "no request generated 2 or more tokens" if name == "tpot" else "no requests completed"
        return f"p{pct:g} {label} cannot be checked against {name}_bound_ms {bound:g} ms: {what}"
    over, needed, ok = bound_check(values, bound * 1e6, pct / 100, conf)
    if ok:
        return None
    measured = float(loadgen_percentile(np.sort(values), pct)) / 1e6
    text = (f"p{pct:g} {label} not shown within {name}_bound_ms {bound:g} ms: {over:,} of {n:,} requests over the "
            f"bound (p{pct:g} {label} {measured:.4g} ms); with {over:,} over, early stopping at {conf:.0%} "
            f"confidence needs at least {needed:,} requests")
    if measured > bound:
        return text + "; the system is too slow for this bound: lower concurrency or session_arrival_rate"
    return text + f"; run longer (raise min_query_count to >= {needed:,})"
