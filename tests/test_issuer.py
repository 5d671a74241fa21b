"""The server scenario's issuer process: its loop (on a fake clock), the real process, and server runs through it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from runner.backends.null import NullBackend
from runner.errors import BackendError, IssuerError
from runner.loadgen import _issue_loop as loop
from runner.loadgen.issuer import IssuerProcess, _shared_dir
from runner.cpus import available_cpus
from runner.scenarios.server import Server, ServerSettings, issue_plan
from runner.sut import BackendSUT

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                                reason="the issuer process is the default on 2+ CPUs (this machine has fewer)")


class StepClock:
    """Each read advances 1 us; a sleep advances by its length (a clock the loop alone moves)."""

    def __init__(self, start: int) -> None:
        self.now, self.sleeps = start, []

    def __call__(self) -> int:
        self.now += 1_000
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += int(seconds * 1e9)


def _ctrl(n: int, start: int, spin_ns: int = 50_000) -> list[int]:
    ctrl = [0] * loop.HEADER
    ctrl[loop.N], ctrl[loop.START], ctrl[loop.SPIN] = n, start, spin_ns
    return ctrl


def test_the_loop_issues_each_query_at_or_after_its_time_and_publishes_in_order():
    offsets = [0, 1_000_000, 1_000_500, 1_002_000, 5_000_000]  # two queries 0.5 us apart, one 1.5 us after
    start = 10**12
    clock, issued, published = StepClock(start), [0] * 5, []
    ctrl = _ctrl(5, start)

    class Ctrl(list):
        def __setitem__(self, key, value):
            if key == loop.PUB:
                published.append(value)
            super().__setitem__(key, value)

    ctrl = Ctrl(ctrl)
    assert loop.issue(offsets, issued, ctrl, clock=clock, sleep=clock.sleep) == 5
    due = [start + o for o in offsets]
    assert all(i >= d for i, d in zip(issued, due))
    assert all(i - d <= 2_000 for i, d in zip(issued, due))  # within two clock reads of the time: never early
    assert issued == sorted(issued) and published == [1, 2, 3, 4, 5] and ctrl[loop.PUB] == 5
    # it slept across the long gaps (releasing the CPU) and woke the spin window before the query
    assert clock.sleeps and all(s * 1e9 >= 1_000 for s in clock.sleeps)


def test_the_loop_stops_when_told_and_when_its_parent_is_gone():
    start = 10**12
    clock, issued = StepClock(start), [0] * 4
    ctrl = _ctrl(4, start)

    def stopping_sleep(seconds: float) -> None:
        clock.sleep(seconds)
        ctrl[loop.STOP] = 1  # the runner stops the run while the loop waits for query 2

    assert loop.issue([0, 1_000, 10_000_000, 20_000_000], issued, ctrl, clock=clock, sleep=stopping_sleep) == 2
    assert issued[2:] == [0, 0] and ctrl[loop.PUB] == 2
    orphan = _ctrl(2, start)
    assert loop.issue([50_000_000, 60_000_000], [0, 0], orphan, clock=StepClock(start), sleep=lambda s: None,
                      parent=-1) == 0


def _leftovers() -> set[str]:
    return {p.name for p in Path(_shared_dir(0)).glob("infersight-issuer-*")}


def test_the_process_issues_a_schedule_and_cleans_up():
    before = _leftovers()
    offsets = np.cumsum(np.random.default_rng(3).exponential(50_000, 2_000)).astype(np.int64)
    import time

    with IssuerProcess(offsets) as p:
        assert p.cpu == max(os.sched_getaffinity(0))
        start = time.perf_counter_ns() + 2_000_000
        p.go(start)
        while p.published() < len(offsets):
            p.check()
            time.sleep(0.01)
        path = Path(p.path)
    assert not path.exists() and _leftovers() == before
    issued = p.issued_ns
    assert len(issued) == len(offsets) and np.all(issued >= start + offsets)  # never before its time
    assert np.all(np.diff(issued) >= 0)


@pytest.mark.parametrize("floating", [False, True])
def test_the_process_is_pinned_to_its_cpu_or_floats_over_the_runs(floating):
    mine = sorted(os.sched_getaffinity(0))
    offsets = np.arange(1, 11, dtype=np.int64) * 10_000_000
    with IssuerProcess(offsets, cpu=mine[-1], cpus=mine if floating else None) as p:
        assert os.sched_getaffinity(p._proc.pid) == (set(mine) if floating else {mine[-1]})
        assert p.cpu == mine[-1]  # the CPU the workers keep off either way


def test_a_server_run_records_the_calibrations_choice_of_a_floating_issuer(null_sut, monkeypatch):
    from runner.loadgen.calibration import Calibration
    from runner.scenarios import server

    trial = {"pinned": {"p50": 1.0, "p99": 900.0, "max": 2_000.0}, "floating": {"p50": 1.0, "p99": 40.0, "max": 90.0}}
    floating = Calibration(host="h", cpu_model="c", kernel="k", measured_at="2027-02-01T11:00:00+00:00",
                           sleep_overshoot_us={"p50": 20.0, "p99": 60.0, "p99_9": 130.0, "max": 400.0},
                           handover_us={"p50": 10.0, "p99": 30.0, "max": 80.0}, samples=1_200, issuer_trial_us=trial)
    monkeypatch.setattr(server, "calibration", lambda cpu: floating)
    sut, qsl = null_sut
    result = Server(_settings(min_duration_ms=50, issuer="auto")).run(sut, qsl)
    plan = result.summary["issuing"]
    assert plan["issuer_pinning"] == "floating" and plan["issuer_cpus"] == available_cpus()
    assert plan["calibration"]["issuer_trial_us"]["floating"]["p99"] == 40.0
    assert result.effective_settings["issuer_pinning"] == "floating" and result.summary["issuer"] == "process"


def test_a_stopped_process_leaves_the_rest_unissued():
    import time

    offsets = np.arange(1, 1_001, dtype=np.int64) * 10_000_000  # 10 s of queries
    with IssuerProcess(offsets) as p:
        p.go(time.perf_counter_ns())
        while p.published() < 3:
            time.sleep(0.005)
        p.stop()
    issued = p.issued_ns
    assert 3 <= np.count_nonzero(issued) < 1_000 and np.all(issued[np.count_nonzero(issued):] == 0)


def test_a_dead_issuer_is_reported_with_how_far_it_got():
    import time

    offsets = np.arange(1, 1_001, dtype=np.int64) * 10_000_000
    with IssuerProcess(offsets) as p:
        p.go(time.perf_counter_ns())
        while p.published() < 1:
            time.sleep(0.005)
        os.kill(p._proc.pid, signal.SIGKILL)  # an injected fault: the process is killed
        p._proc.wait()
        with pytest.raises(IssuerError, match=r"the issuer process exited with code -9 after issuing \d+ of "
                                              r"1,000 queries"):
            p.check()


# -- server runs through the issuer process ------------------------------------------------------------

def _settings(**kw) -> ServerSettings:
    base = dict(target_qps=5_000, latency_bound_ms=1_000, min_duration_ms=300, min_query_count=500,
                warmup_duration_ms=0, issuer="process")
    return ServerSettings(**{**base, **kw})


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_server_run_through_the_issuer_process(null_sut, concurrency):
    sut, qsl = null_sut
    before = _leftovers()
    result = Server(_settings(concurrency=concurrency)).run(sut, qsl)
    rec, s = result.records, result.summary
    assert result.valid, result.reasons
    assert s["issuer"] == "process" and result.effective_settings["issuer"] == "process"
    assert result.effective_settings["concurrency"] == concurrency
    assert np.all(rec["scheduled_ns"] <= rec["issued_ns"]) and np.all(rec["issued_ns"] < rec["completed_ns"])
    assert len(np.unique(rec["query_index"])) == len(rec["query_index"]) == s["scheduled_query_count"]
    assert 0 <= s["issue_delay_p50_us"] <= s["issue_delay_p99_us"]
    assert s["issuer_cpu_s"] > 0 and s["issuer_cores_per_1k_qps"] > 0  # the issuer reports its own CPU time
    # a worker starts a query once it is issued: the queueing delay is never below the issue delay
    assert s["queueing_delay_p99_ms"] * 1e3 >= s["issue_delay_p99_us"]
    assert _leftovers() == before


def test_auto_follows_the_plan_and_thread_is_honoured(null_sut):
    sut, qsl = null_sut
    auto = Server(_settings(min_duration_ms=50, issuer="auto")).run(sut, qsl)
    planned = issue_plan(ServerSettings(target_qps=5_000, latency_bound_ms=1_000), available_cpus())
    assert auto.summary["issuer"] == planned.issuer and auto.summary["issuing"]["why"] == planned.why
    thread = Server(_settings(min_duration_ms=50, issuer="thread")).run(sut, qsl)
    assert thread.summary["issuer"] == "thread"
    # without an issuer process the lateness counts only queries a worker was free for before their time
    s = thread.summary
    assert 0 < s["issue_delay_count"] <= s["query_count"] and s["issue_delay_p50_us"] <= s["issue_delay_p99_us"]


class FailingBackend(NullBackend):
    name = "failing"

    def run_batch(self, inputs):
        raise BackendError("injected fault")


class IssuerKiller(NullBackend):
    """Kills the issuer process (an injected fault) while serving its 50th query."""

    name = "issuer-killer"
    served = 0

    def run_batch(self, inputs):
        type(self).served += 1
        if type(self).served == 50:
            for pid in _issuer_pids():
                os.kill(pid, signal.SIGKILL)
        return super().run_batch(inputs)


def _issuer_pids() -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process().children() if any("_issue_loop" in a for a in c.cmdline())]


@pytest.mark.parametrize("backend, error, match", [
    (FailingBackend, BackendError, "injected fault"),
    (IssuerKiller, IssuerError, r"the issuer process exited with code -9 after issuing"),
])
def test_a_failure_during_the_run_stops_the_issuer_and_cleans_up(null_sut, tiny_model_card, backend, error, match):
    _, qsl = null_sut
    b = backend()
    b.prepare(tiny_model_card, None)
    before = _leftovers()
    with pytest.raises(error, match=match):
        Server(_settings(min_duration_ms=2_000)).run(BackendSUT(b, qsl), qsl)
    assert _leftovers() == before and _issuer_pids() == []
