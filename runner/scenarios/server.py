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

Issuing: an `IssuePlan` (runner.loadgen.isolation, from the CPUs, `issuer`, `isolation` and this
machine's timing calibration) says who keeps the schedule. With `process` a separate issuer process
(runner.loadgen.issuer) keeps it on a GIL and a CPU of its own (the workers keep off that CPU; run
through runner.run, the backend's thread pools too), spinning for the calibrated `spin_us` before
each query, timestamps each query as it issues it and publishes it; with `thread` each worker
waits for its query's time itself and its issue time is when it starts the query, so gaps below
the system's accept time (~1.6 us for the null backend) cannot occur.

The issuer's lateness (issued - scheduled; with `thread`, only of queries a worker was free for
before their time: a query that waited for a busy worker is queueing) is held to a tolerance
(`lateness_tolerance_us`, default 1% of the bound): a run that failed its latency bound while the
issuer was later than that, and the system kept up with the load, is a load-generator limit
(validity LOADGEN_LIMIT, runner.loadgen.lateness), not a verdict on the system.

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

import contextlib
import ctypes
import gc
import sys
import threading
import time
from array import array
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from runner.cpus import available_cpus
from runner.loadgen import _issue_loop, early_stopping
from runner.loadgen.calibration import calibration
from runner.loadgen.interfaces import SystemUnderTest
from runner.loadgen.isolation import IssuePlan, machine_load, plan_issuing
from runner.loadgen.issuer import IssuerProcess, keeping_off
from runner.loadgen.poisson import server_schedule
from runner.loadgen.result import LOADGEN_LIMIT, ScenarioResult
from runner.scenarios._server_verdict import lateness_verdict, server_summary, server_verdict, tolerance_us
from runner.scenarios.base import Progress, Scenario, ScenarioSettings, Sink, sample_order, warm_up

__all__ = ["Server", "ServerSettings", "server_summary", "server_verdict", "issue_plan"]

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
    isolation: Literal["auto", "dedicated", "shared"] = Field(
        "auto", description="CPUs of the issuer process: dedicated (a CPU of its own, the backend kept off it), "
                            "shared (the backend may use it too), or auto (dedicated with 3+ CPUs; on 2, "
                            "whichever the machine's calibration says keeps the lateness within tolerance).")
    lateness_tolerance_us: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="p99 issuer lateness beyond which a run that failed its "
                                                     "bound is a load-generator limit (default: 1% of the bound).")
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
        # without an issuer process: when a worker took each query it was free for before its time (else 0)
        self.took = array("q", bytes(8 * n)) if issuer is None else None
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

    def late_of(self, query_index: np.ndarray) -> np.ndarray:
        """The issue delays that are the load generator's own: every query's with an issuer process; else those
        of the queries a worker took before their scheduled time (a later one waited for a busy worker)."""
        delay = np.asarray(self.issued_np[query_index]) - self.sched_np[query_index]
        if self.took is None:
            return delay
        return delay[np.frombuffer(self.took, dtype=np.int64)[query_index] != 0]  # set only when taken early

    def stop_issuing(self) -> None:
        self.stop[0] = 0
        if self.issuer is not None:
            self.issuer.stop()


def _worker(w: int, st: _State, issue: Any) -> None:
    """One worker thread: take the next query, wait until it is issued (or, without an issuer
    process, until its scheduled time), run it, timestamp its start and completion."""
    with keeping_off(st.issuer):
        _serve(w, st, issue)


def _serve(w: int, st: _State, issue: Any) -> None:
    clock, sleep = _clock, _sleep
    sched, begun, done, cur, stop, rows, pub = st.sched, st.begun, st.done, st.cur, st.stop, st.rows, st.pub
    took = st.took
    published = _issue_loop.PUB
    _precise_sleeps()
    try:
        for i in st.counter:
            cur[w] = i
            if i >= stop[0]:
                break
            if pub is not None:
                # the issuer process keeps the time: sleep (releasing the GIL and the core) until it
                # has issued query i; a worker that spun here would take the core the issuer needs
                while pub[published] <= i and i < stop[0]:
                    sleep(min(max(sched[i] - clock() + _PICKUP_NS, _POLL_NS), _MAX_SLEEP_NS) * 1e-9)
                if i >= stop[0]:
                    break
                now = clock()  # read once the query is issued: it never begins before its issue time
            elif (now := clock()) < (t := sched[i]):
                took[i] = now
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


class Server(Scenario):
    name: ClassVar[str] = "server"
    Settings: ClassVar[type[ScenarioSettings]] = ServerSettings
    quick_settings: ClassVar[dict[str, Any]] = {"min_duration_ms": 1_000, "warmup_duration_ms": 200,
                                                 "min_query_count": 1_024}
    plan: IssuePlan | None = None  # set by `arrange` (runner.run also keeps the backend's threads where it says)

    def arrange(self, cpus: list[int]) -> IssuePlan:
        self.plan = issue_plan(self.settings, cpus)
        return self.plan

    def measure(self, sut: SystemUnderTest, loaded: np.ndarray, sink: Sink | None,
                progress: Progress | None) -> ScenarioResult:
        s = self.settings
        warmup_qps = warm_up(sut, loaded, s.warmup_duration_ms, 1) if s.warmup_duration_ms else None
        offsets = server_schedule(s.target_qps, s.schedule_rng_seed, min_duration_ms=s.min_duration_ms,
                                  min_query_count=s.min_query_count, max_duration_ms=s.max_duration_ms,
                                  max_query_count=s.max_query_count)
        order = sample_order(loaded, len(offsets), s.sample_index_rng_seed)
        workers = s.concurrency or len(available_cpus())
        plan = self.plan or issue_plan(s, available_cpus())
        previous = sys.getswitchinterval()
        issuer = (IssuerProcess(offsets, spin_ns=int(plan.spin_us * 1_000), cpu=plan.issuer_cpu, cpus=plan.issuer_cpus)
                  if plan.issuer == "process" else None)
        try:
            sys.setswitchinterval(min(previous, _SWITCH_S))
            gc.freeze()  # the collector skips every object that exists now: no long GIL-holding collections
            self.timed_part_starts()
            st = _State(offsets, order, _clock() + _LEAD_NS, workers, issuer)
            if issuer is not None:
                issuer.go(st.start)
            with keeping_off(issuer):
                _Watch(self.settings, st, sink, progress).run([threading.Thread(
                    target=_worker, args=(w, st, sut.issue_query), name=f"server-worker-{w}", daemon=True)
                    for w in range(workers)])
            rec = st.records(0, st.n)
            begun, late = st.begun_of(rec["query_index"]), st.late_of(rec["query_index"])
        finally:
            gc.unfreeze()
            sys.setswitchinterval(previous)
            if issuer is not None:
                issuer.close()
        result = self._result(rec, begun, late, st, workers, plan, warmup_qps)
        if issuer is not None and issuer.cpu_ns and result.summary.get("duration_ns"):
            cpu_share = issuer.cpu_ns / result.summary["duration_ns"]  # cores the issuer kept busy
            result = result.with_summary(issuer_cpu_s=issuer.cpu_ns / 1e9,
                                         issuer_cores_per_1k_qps=cpu_share / (s.target_qps / 1_000))
        return result

    def _result(self, rec: dict[str, np.ndarray], begun: np.ndarray, late: np.ndarray, st: _State, workers: int,
                plan: IssuePlan, warmup_qps: float | None) -> ScenarioResult:
        s = self.settings
        summary = server_summary(rec, st.start, st.n, s, begun_ns=begun, late_ns=late)
        summary.update(concurrency=workers, issuer=plan.issuer, warmup_queries_per_second=warmup_qps,
                       stopped_early=st.stopped, issuing=plan.to_dict(), **machine_load())
        validity, reasons, advice = lateness_verdict(summary, s, st.stopped)
        summary["recommendation"] = advice
        valid = validity == "VALID"
        eff = {**s.to_dict(), "concurrency": workers, "issuer": plan.issuer, "isolation": plan.isolation,
               "spin_us": plan.spin_us, "issuer_pinning": plan.issuer_pinning,
               "lateness_tolerance_us": summary.get("issue_delay_tolerance_us")}
        return ScenarioResult(self.name, "queries_per_second", s.target_qps if valid else None, "queries/s",
                              valid, reasons, summary, eff, rec, loadgen_limit=validity == LOADGEN_LIMIT)


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
        except BaseException as exc:
            st.stop_issuing()
            st.finished.wait(2 * _MAX_SLEEP_NS / 1e9)
            if isinstance(exc, KeyboardInterrupt):  # interrupted: keep what was measured, then stop
                with contextlib.suppress(Exception):  # a store that cannot take them: the abort still stands
                    self._flush(st.n)
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


def issue_plan(s: ServerSettings, cpus: list[int]) -> IssuePlan:
    """The issuing arrangement of a server run on `cpus`, from this machine's calibration (measured when
    stale; a run that forces `issuer: thread` needs none)."""
    if s.issuer == "thread" and s.isolation != "dedicated":
        return IssuePlan("thread", "none", None, None, 0.0, 0.0, "issuer=thread: workers issue their own queries")
    return plan_issuing(cpus, calibration(cpu=cpus[-1]), tolerance_us(s), s.issuer, s.isolation)
