"""Server: seeded Poisson arrivals at a target QPS, one sample per query, p99 latency within a bound.

MLPerf LoadGen's server semantics: queries arrive at the times of a Poisson process
(runner.loadgen.poisson, seeded with schedule_rng_seed); a query's latency runs from its
*scheduled* arrival to its completion, so a query that waits for a free worker counts its
queueing delay. The run is VALID when the target-percentile (p99) latency is within
`latency_bound_ms` and MLPerf early stopping passes with the over-bound count (at p99,
tolerance 0, confidence 0.99: 459 queries with 0 over the bound, 662 with 1, 2,010 with 10),
and the minimums are met (the minimum duration on the last query's scheduled time). Headline:
the target QPS when VALID (MLPerf reports the scheduled QPS); the summary also holds the
achieved rates, the SLA figures (share within the bound, over-bound count, queueing delay, the
issuer's own lateness) and, for an INVALID run, a recommendation.

Issuing (`issuer`): with `process` (the default where the run may use 2 or more CPUs) a separate
issuer process (runner.loadgen.issuer) keeps the schedule on a GIL and a CPU of its own (the
workers keep off that CPU), timestamps each query as it issues it and publishes it; with `thread` (one CPU, where a spinning process would
take the system's only core) each worker waits for its query's time itself and its issue time
is when it starts the query, so gaps below the system's accept time (~1.6 us for the null
backend) cannot occur.

Executor: `concurrency` worker threads take the next query index from a shared iterator, wait
for it to be issued (sleeping with a 1 ns timer slack, which releases the GIL; without an issuer
process, spinning on the clock for the last 50 us), run it on the system under test (backends such as onnxruntime release the GIL
while they compute) and timestamp its start and completion into preallocated arrays. Workers
hand the GIL to one another; the hand-off costs ~10 us, so with a system that answers at once
(the null backend) one worker (`concurrency=1`) serves with the least overhead. The calling
thread only watches: progress a few times a second, records to the sink every 2 s, and (with
`stop_when_invalid`) stops issuing once the over-bound queries make the run INVALID whatever
follows. While timing, the GIL switch interval is lowered to 1 ms (and restored after), so a
thread running Python code cannot hold a due worker back for Python's default 5 ms, and the
objects that exist are frozen out of garbage collection (`gc.freeze`), so no collection scans
the whole heap while holding the GIL.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from runner.cpus import available_cpus
from runner.loadgen import _issue_loop, early_stopping
from runner.loadgen.interfaces import SystemUnderTest
from runner.loadgen.issuer import IssuerProcess
from runner.loadgen.poisson import server_schedule
from runner.loadgen.result import ScenarioResult, latency_summary, loadgen_percentile
from runner.scenarios.base import Progress, Scenario, ScenarioSettings, Sink, sample_order, warm_up

__all__ = ["Server", "ServerSettings", "server_summary", "server_verdict"]

_TICK_S = 0.25               # progress and checks four times a second
_FLUSH_NS = 2_000_000_000    # records reach the sink at least every 2 s
_LEAD_NS = 5_000_000         # the schedule starts this long after the workers are started
_SLEEP_NS = 70_000           # a worker this far ahead of a query's time sleeps (releasing the GIL) ...
_SPIN_NS = 50_000            # ... until this close to it (a wake-up takes ~10 us), then spins on the clock
_MAX_SLEEP_NS = 100_000_000  # and wakes at least every 0.1 s to see whether the run was stopped
_PICKUP_NS = 10_000          # with an issuer process a worker sleeps to this long after its query's time, then
_POLL_NS = 50_000            # looks again this often until it is issued: a sleeper that woke often would
                             # preempt the issuer (Linux favours waking threads over one that spins)
_PR_SET_TIMERSLACK = 29      # Linux prctl: a thread's sleeps overshoot by up to its timer slack (50 us)
_SWITCH_S = 0.001            # the GIL switch interval while timing (Python's default, 5 ms, lets any
                             # thread running Python code delay a due worker by up to 5 ms)

# The workers' clock and sleep. Tests substitute a fake clock (with a system under test that
# advances it) to simulate a system of known capacity deterministically.
_clock = time.perf_counter_ns
_sleep = time.sleep


class ServerSettings(ScenarioSettings):
    """LoadGen's server TestSettings, with units in the names."""

    target_qps: float = Field(gt=0, description="Scheduled queries per second (Poisson arrivals).")
    latency_bound_ms: float = Field(gt=0, description="Bound on the target-percentile latency "
                                                      "(MLPerf's server target latency).")
    target_latency_percentile: float = Field(99.0, gt=0, lt=100, description="Percentile held to the bound.")
    samples_per_query: Literal[1] = Field(1, description="Samples per query (MLPerf server: always 1).")
    min_query_count: int = Field(270_336, gt=0, description="Minimum number of queries (MLPerf server: 270,336).")
    max_query_count: int = Field(0, ge=0, description="Schedule at most this many queries (0: no limit).")
    early_stopping_confidence: float = Field(0.99, gt=0, lt=1, description="Confidence of the early-stopping test.")
    early_stopping_tolerance: float = Field(0.0, ge=0, lt=1, description="Tolerance d of the early-stopping test.")
    concurrency: int | None = Field(None, ge=1, le=4096, description="Worker threads issuing queries "
                                                                     "(default: the CPUs this process may use).")
    issuer: Literal["auto", "process", "thread"] = Field(
        "auto", description="Who keeps the schedule: a separate issuer process (its own GIL: Poisson-exact issue "
                            "times), each worker thread itself (no extra process), or auto (process when the run "
                            "may use 2+ CPUs).")
    stop_when_invalid: bool = Field(True, description="Stop issuing once the over-bound queries make the run "
                                                      "INVALID whatever follows (saves the rest of an overloaded run).")

    @model_validator(mode="after")
    def _tolerance_below_percentile(self) -> "ServerSettings":
        if self.early_stopping_tolerance >= self.target_latency_percentile / 100:
            raise ValueError(f"early_stopping_tolerance ({self.early_stopping_tolerance}) must be below the "
                             f"target percentile ({self.target_latency_percentile / 100})")
        return self


class _State:
    """What the workers share with the watching thread. Each array slot has one writer.

    `issuer`: the issuer process (its issue timestamps), or None when workers issue at their
    queries' times themselves (their start time is then the issue time).
    """

    def __init__(self, offsets: np.ndarray, order: np.ndarray, start: int, workers: int,
                 issuer: IssuerProcess | None = None) -> None:
        n = len(offsets)
        self.n, self.start, self.order, self.rows = n, start, order, order.reshape(-1, 1)
        self.issuer = issuer
        self.pub = issuer.counter if issuer is not None else None
        self.sched = array("q", (offsets + start).tobytes())
        self.begun, self.done = array("q", bytes(8 * n)), array("q", bytes(8 * n))
        self.sched_np, self.begun_np, self.done_np = (np.frombuffer(a, dtype=np.int64)
                                                      for a in (self.sched, self.begun, self.done))
        self.issued_np = issuer.issued_view if issuer is not None else self.begun_np
        self.counter = iter(range(n))
        self.stop = [n]            # workers take no query at or past this index
        self.cur = [0] * workers   # the index each worker holds (every index below min(cur) is complete)
        self.running = workers
        self.finished = threading.Event()
        self.lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.stopped: str | None = None

    def records(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Per-query records of the completed queries among lo..hi-1 (the 5 columns of RECORD_FIELDS)."""
        keep = np.flatnonzero(self.done_np[lo:hi]) + lo
        return {"sample_index": self.order[keep], "query_index": keep.astype(np.int64),
                "scheduled_ns": self.sched_np[keep], "issued_ns": np.asarray(self.issued_np[keep]),
                "completed_ns": self.done_np[keep]}

    def begun_of(self, query_index: np.ndarray) -> np.ndarray:
        """When a worker started each of these queries (ns)."""
        return self.begun_np[query_index]

    def stop_issuing(self) -> None:
        self.stop[0] = 0
        if self.issuer is not None:
            self.issuer.stop()


def _worker(w: int, st: _State, issue: Any) -> None:
    """One worker thread: take the next query, wait until it is issued (or, without an issuer
    process, until its scheduled time), run it, timestamp its start and completion."""
    with _leaving_the_issuer_alone(st.issuer):
        _serve(w, st, issue)


def _serve(w: int, st: _State, issue: Any) -> None:
    clock, sleep = _clock, _sleep
    sched, begun, done, cur, stop, rows, pub = st.sched, st.begun, st.done, st.cur, st.stop, st.rows, st.pub
    published = _issue_loop.PUB
    _precise_sleeps()
    try:
        for i in st.counter:
            cur[w] = i
            if i >= stop[0]:
                break
            t = sched[i]
            now = clock()
            if pub is not None:
                # the issuer process keeps the time: sleep (releasing the GIL and the core) until it
                # has issued query i; a worker that spun here would take the core the issuer needs
                while pub[published] <= i and i < stop[0]:
                    sleep(min(max(t - now + _PICKUP_NS, _POLL_NS), _MAX_SLEEP_NS) * 1e-9)
                    now = clock()
                if i >= stop[0]:
                    break
            elif now < t:
                while t - now > _SLEEP_NS and i < stop[0]:
                    sleep(min(t - now - _SPIN_NS, _MAX_SLEEP_NS) * 1e-9)
                    now = clock()
                if i >= stop[0]:
                    break
                while now < t:
                    now = clock()
            issue(rows[i])
            begun[i] = now
            done[i] = clock()
    except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which re-raises
        st.errors.append(exc)
        st.stop_issuing()
    finally:
        with st.lock:
            st.running -= 1
            if st.running == 0:
                st.finished.set()


def _precise_sleeps() -> None:
    """Set the calling thread's timer slack to 1 ns (Linux), so its sleeps end within ~10 us; else no-op."""
    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        return


@contextmanager
def _leaving_the_issuer_alone(issuer: IssuerProcess | None) -> Iterator[None]:
    """Keep the calling thread off the issuer process's CPU, and under SCHED_BATCH (same priority,
    any user may set it) so that its wake-ups do not preempt a running thread; restored after. On a
    2-CPU VM this takes the issuer's lateness at p99 from ~15 us to ~2-5 us. Linux; elsewhere a no-op."""
    if issuer is None or issuer.cpu is None or not hasattr(os, "sched_setscheduler"):
        yield
        return
    affinity, policy = os.sched_getaffinity(0), os.sched_getscheduler(0)
    try:
        if affinity - {issuer.cpu}:
            os.sched_setaffinity(0, affinity - {issuer.cpu})
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:
        pass
    try:
        yield
    finally:
        try:
            os.sched_setaffinity(0, affinity)
            os.sched_setscheduler(0, policy, os.sched_param(0))
        except OSError:
            pass


class Server(Scenario):
    name: ClassVar[str] = "server"
    Settings: ClassVar[type[ScenarioSettings]] = ServerSettings
    quick_settings: ClassVar[dict[str, Any]] = {"min_duration_ms": 1_000, "warmup_duration_ms": 200,
                                                 "min_query_count": 1_024}

    def measure(self, sut: SystemUnderTest, loaded: np.ndarray, sink: Sink | None,
                progress: Progress | None) -> ScenarioResult:
        s = self.settings
        warmup_qps = warm_up(sut, loaded, s.warmup_duration_ms, 1) if s.warmup_duration_ms else None
        offsets = server_schedule(s.target_qps, s.schedule_rng_seed, min_duration_ms=s.min_duration_ms,
                                  min_query_count=s.min_query_count, max_duration_ms=s.max_duration_ms,
                                  max_query_count=s.max_query_count)
        order = sample_order(loaded, len(offsets), s.sample_index_rng_seed)
        workers = s.concurrency or len(available_cpus())
        issuer_kind = s.issuer if s.issuer != "auto" else ("process" if len(available_cpus()) >= 2 else "thread")
        previous = sys.getswitchinterval()
        issuer = IssuerProcess(offsets) if issuer_kind == "process" else None
        try:
            sys.setswitchinterval(min(previous, _SWITCH_S))
            gc.freeze()  # the collector skips every object that exists now: no long GIL-holding collections
            self.timed_part_starts()
            st = _State(offsets, order, _clock() + _LEAD_NS, workers, issuer)
            if issuer is not None:
                issuer.go(st.start)
            with _leaving_the_issuer_alone(issuer):
                _Watch(self.settings, st, sink, progress).run([threading.Thread(
                    target=_worker, args=(w, st, sut.issue_query), name=f"server-worker-{w}", daemon=True)
                    for w in range(workers)])
            rec = st.records(0, st.n)
            begun = st.begun_of(rec["query_index"])
        finally:
            gc.unfreeze()
            sys.setswitchinterval(previous)
            if issuer is not None:
                issuer.close()
        return self._result(rec, begun, st, workers, issuer_kind, warmup_qps)

    def _result(self, rec: dict[str, np.ndarray], begun: np.ndarray, st: _State, workers: int, issuer: str,
                warmup_qps: float | None) -> ScenarioResult:
        s = self.settings
        summary = server_summary(rec, st.start, st.n, s, begun_ns=begun)
        summary.update(concurrency=workers, issuer=issuer, warmup_queries_per_second=warmup_qps,
                       stopped_early=st.stopped)
        reasons, advice = server_verdict(summary, s, st.stopped)
        summary["recommendation"] = advice
        valid = not reasons
        eff = {**s.to_dict(), "concurrency": workers, "issuer": issuer}
        return ScenarioResult(self.name, "queries_per_second", s.target_qps if valid else None, "queries/s",
                              valid, reasons, summary, eff, rec)


class _Watch:
    """The calling thread's part: start the workers, then check, report and flush until they finish."""

    def __init__(self, s: ServerSettings, st: _State, sink: Sink | None, progress: Progress | None) -> None:
        self.s, self.st, self.sink, self.progress = s, st, sink, progress
        self.flushed = self.checked = self.over = 0
        self.bound_ns = int(s.latency_bound_ms * 1e6)
        self.p = s.target_latency_percentile / 100

    def run(self, threads: list[threading.Thread]) -> None:
        st, wall = self.st, time.perf_counter_ns()
        max_end, next_flush = wall + self.s.max_duration_ms * 1_000_000, wall + _FLUSH_NS
        try:
            for t in threads:
                t.start()
            while not st.finished.wait(_TICK_S):
                now = time.perf_counter_ns()
                if st.issuer is not None:
                    st.issuer.check()
                self._check(min(st.cur))
                if now >= max_end and st.stopped is None:
                    self._stop(f"max_duration_ms {self.s.max_duration_ms} reached before every scheduled "
                               f"query was issued")
                if now >= next_flush:
                    self._flush(min(st.cur))
                    next_flush = now + _FLUSH_NS
        except BaseException:
            st.stop_issuing()
            st.finished.wait(2 * _MAX_SLEEP_NS / 1e9)
            raise
        if st.errors:
            raise st.errors[0]
        if st.issuer is not None and st.stopped is None:
            st.issuer.check()
        self._check(st.n)
        self._flush(st.n)

    def _check(self, hi: int) -> None:
        """Count over-bound queries among the newly completed; report progress; stop a doomed run."""
        st, lo = self.st, self.checked
        if hi > lo:
            done = st.done_np[lo:hi]
            lat = done - st.sched_np[lo:hi]
            self.over += int(np.count_nonzero((lat > self.bound_ns) & (done != 0)))
            self.checked = hi
        if self.progress:
            self.progress(hi / st.n, f"{hi:,}/{st.n:,} queries, {self.over:,} over {self.s.latency_bound_ms:g} ms")
        if self.s.stop_when_invalid and self.over and st.stopped is None:
            needed = early_stopping.min_queries(self.over, self.p, self.s.early_stopping_tolerance,
                                                self.s.early_stopping_confidence)
            if needed > st.n:
                self._stop(f"stopped early after {hi:,} of {st.n:,} scheduled queries: {self.over:,} were "
                           f"already over the bound, so the p{self.s.target_latency_percentile:g} claim could "
                           f"not pass even if every remaining query met it (early stopping would need "
                           f"{needed:,} queries)")

    def _stop(self, why: str) -> None:
        self.st.stopped = why
        self.st.stop_issuing()

    def _flush(self, hi: int) -> None:
        if self.sink is not None and hi > self.flushed:
            rec = self.st.records(self.flushed, hi)
            if len(rec["completed_ns"]):
                self.sink(rec)
        self.flushed = max(self.flushed, hi)


def server_summary(rec: dict[str, np.ndarray], start: int, scheduled: int, s: ServerSettings,
                   begun_ns: np.ndarray | None = None) -> dict[str, Any]:
    """Latency, SLA and rate figures of a server run from its per-query records (ns timestamps).

    `start` is the schedule's origin and `scheduled` the number of queries the schedule held.
    `begun_ns`: when a worker started each query (default: its issue time); the queueing delay
    runs from the scheduled time to it, the issue delay (the issuer's own lateness) to the issue.
    Percentiles follow LoadGen's convention (runner.loadgen.result.loadgen_percentile).
    """
    lat = rec["completed_ns"] - rec["scheduled_ns"]
    n, bound_ns = len(lat), int(s.latency_bound_ms * 1e6)
    over = int(np.count_nonzero(lat > bound_ns))
    p = s.target_latency_percentile / 100
    needed = early_stopping.min_queries(over, p, s.early_stopping_tolerance, s.early_stopping_confidence)
    out: dict[str, Any] = {"query_count": n, "sample_count": n, "scheduled_query_count": scheduled,
                           "target_qps": s.target_qps, "latency_bound_ms": s.latency_bound_ms,
                           "over_bound_count": over, "within_bound_fraction": (n - over) / n if n else None,
                           "early_stopping_min_queries": needed, "early_stopping_passed": n >= needed,
                           **latency_summary(lat)}
    if n == 0:
        return {**out, "duration_ns": 0, "scheduled_duration_ns": 0, "samples_per_second": 0.0}
    last_sched = int(rec["scheduled_ns"].max())
    span = max(int(rec["completed_ns"].max()) - start, 1)
    begun = rec["issued_ns"] if begun_ns is None else begun_ns
    queueing = np.sort(begun - rec["scheduled_ns"])
    issue_delay = np.sort(rec["issued_ns"] - rec["scheduled_ns"])
    out.update(duration_ns=span, scheduled_duration_ns=last_sched - start,
               target_percentile_latency_ms=float(loadgen_percentile(np.sort(lat), s.target_latency_percentile)) / 1e6,
               achieved_qps=n * 1e9 / span, samples_per_second=n * 1e9 / span,
               scheduled_qps=n * 1e9 / max(last_sched - start, 1),
               issue_rate_qps=n * 1e9 / max(int(rec["issued_ns"].max()) - start, 1),
               queueing_delay_mean_ms=float(queueing.mean()) / 1e6,
               queueing_delay_p99_ms=float(loadgen_percentile(queueing, 99.0)) / 1e6,
               issue_delay_p50_us=float(np.median(issue_delay)) / 1e3,
               issue_delay_p99_us=float(loadgen_percentile(issue_delay, 99.0)) / 1e3,
               service_latency_p50_ms=float(np.median(rec["completed_ns"] - begun)) / 1e6)
    out["issue_rate_ratio"] = out["issue_rate_qps"] / s.target_qps
    return out


def server_verdict(summary: dict[str, Any], s: ServerSettings, stopped: str | None) -> tuple[list[str], str | None]:
    """Why a server run is INVALID (each reason with its numbers; empty when VALID) and what to do.

    Conditions (LoadGen's): target-percentile latency within the bound, early stopping passed
    for the over-bound count, min duration (on the last query's scheduled time), min queries.
    """
    n, over, needed = summary["query_count"], summary["over_bound_count"], summary["early_stopping_min_queries"]
    pct, bound = f"p{s.target_latency_percentile:g}", s.latency_bound_ms
    if n == 0:
        return [stopped or "no query completed"], None
    reasons: list[str] = []
    latency_missed = summary["target_percentile_latency_ms"] > bound
    advice = _advice(summary, s) if latency_missed or n < needed else None
    over_text = f"{over:,} of {n:,} queries ({over / n:.2%}) over the bound"
    if latency_missed:
        reasons.append(f"{pct} latency {summary['target_percentile_latency_ms']:.4g} ms > bound {bound:g} ms: "
                       f"{over_text}; {advice}")
    if n < needed:
        reasons.append(f"early stopping needs at least {needed:,} queries with {over:,} over the bound for a "
                       f"{pct} claim at {s.early_stopping_confidence:.0%} confidence (tolerance "
                       f"{s.early_stopping_tolerance:g}); the run completed {n:,}"
                       + ("" if reasons else f" ({over_text}); {advice}"))
    if stopped:
        return [*reasons, stopped], advice
    if summary["scheduled_duration_ns"] < s.min_duration_ms * 1_000_000:
        reasons.append(f"min duration not met: the last query was scheduled at "
                       f"{summary['scheduled_duration_ns'] / 1e9:.3f} s < min_duration_ms {s.min_duration_ms} ms "
                       f"(the schedule was cut by max_query_count or max_duration_ms)")
    if n < s.min_query_count:
        reasons.append(f"min query count not met: {n:,} queries < min_query_count {s.min_query_count:,}")
    return reasons, advice


def _advice(summary: dict[str, Any], s: ServerSettings) -> str:
    """What to do about a run that missed its latency target, or had too few queries to prove it."""
    if summary["service_latency_p50_ms"] > s.latency_bound_ms:
        return (f"the system alone takes {summary['service_latency_p50_ms']:.4g} ms per query (median, without "
                f"queueing) > bound {s.latency_bound_ms:g} ms, so a lower target QPS will not help: raise "
                f"latency_bound_ms or use a faster configuration")
    if summary["target_percentile_latency_ms"] <= s.latency_bound_ms:
        needed = summary["early_stopping_min_queries"]
        return f"run longer: set min_query_count >= {needed:,} (or a longer min_duration_ms)"
    achieved = summary["achieved_qps"]
    suggest = 0.9 * min(achieved, s.target_qps)
    return (f"lower target QPS to ~{_round(suggest)} (90% of the {achieved:,.0f} queries/s the system completed "
            f"against a target of {s.target_qps:,.6g})")


def _round(qps: float) -> str:
    """A QPS rounded to 3 significant figures, written plainly (1,230 not 1.23e+03)."""
    value = float(f"{qps:.3g}")
    return f"{value:,.0f}" if value >= 100 else f"{value:g}"
