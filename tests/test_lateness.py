"""The load generator's lateness as a validity condition: LOADGEN_LIMIT, distinct from INVALID.

The verdict logic runs on hand-made summaries; the server scenario on the fake clock of test_server
with lateness injected into the workers' sleeps (deterministic: one worker, a clock moved only by
sleeps, clock reads and the system's service time); the peak search against synthetic probes that
are load-generator limits; the CLI for bad tolerances and a CPU set too small for the isolation.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

import numpy as np
import pytest

from conftest import cli
from runner.loadgen import lateness
from runner.peak import PeakSearch, PeakSettings, Probe
from runner.scenarios import server
from runner.scenarios.multi_stream import MultiStream, MultiStreamSettings
from runner.scenarios.server import Server, ServerSettings
from test_server import CLOCK, CapacityBackend, FakeClock

# -- the verdict --------------------------------------------------------------------------------------


def _summary(p99_us: float, tolerance_us: float = 150.0, achieved: float = 1_000.0) -> dict:
    delays = np.full(1_000, 1_000, dtype=np.int64)
    delays[-20:] = int(p99_us * 1e3)
    return {**lateness.lateness_figures(delays, tolerance_us), "target_qps": 1_000.0, "achieved_qps": achieved,
            "issuer": "process", "service_latency_p50_ms": 0.2}


def test_lateness_figures_and_the_default_tolerances():
    s = _summary(5_000.0)
    assert s["issue_delay_p50_us"] == 1.0 and s["issue_delay_p99_us"] == 5_000.0 and s["issue_delay_max_us"] == 5_000.0
    assert s["issue_delay_count"] == 1_000 and not s["issue_delay_within_tolerance"]
    assert _summary(100.0)["issue_delay_within_tolerance"]
    assert lateness.tolerance_us(None, 15.0) == 150.0      # 1% of a 15 ms bound
    assert lateness.tolerance_us(None, None) == 100.0      # no bound on a scheduled latency
    assert lateness.tolerance_us(40.0, 15.0) == 40.0       # the setting wins
    empty = lateness.lateness_figures(np.empty(0, dtype=np.int64), 150.0)
    assert empty["issue_delay_p99_us"] is None and empty["issue_delay_within_tolerance"]


def test_a_late_issuer_turns_a_latency_failure_into_a_load_generator_limit():
    validity, reasons, advice = lateness.decide(_summary(5_000.0), ["p99 latency 20 ms > bound 15 ms"], True, "lower")
    assert validity == "LOADGEN_LIMIT"
    assert reasons[0].startswith("load generator could not keep the schedule: issued late by p99 5 ms > tolerance "
                                 "150 us (p50 1 us, max 5 ms, over 1,000 queries), issued by process")
    assert reasons[1] == "p99 latency 20 ms > bound 15 ms"  # the run's own verdict is kept, after it
    assert "load-generator limit, not a verdict on the system" in advice and "--cpus with 3 or more" in advice
    busy = lateness.decide({**_summary(5_000.0), "machine_load_1m": 7.5, "machine_cpus": 2}, ["p99"], True, None)[2]
    assert "the machine was busy (load average 7.5 on 2 CPUs: other processes took the issuer's CPU)" in busy


@pytest.mark.parametrize("summary, reasons, latency_failed, expected", [
    (_summary(5_000.0), [], False, "VALID"),                                  # charged to the system, still passed
    (_summary(100.0), ["p99 latency 20 ms > bound 15 ms"], True, "INVALID"),  # on time: the system's failure
    (_summary(5_000.0, achieved=500.0), ["p99 latency"], True, "INVALID"),   # overloaded: fails whatever the issuer
    (_summary(5_000.0), ["min duration not met"], False, "INVALID"),         # not a failure lateness can cause
])
def test_when_lateness_does_not_decide_the_verdict(summary, reasons, latency_failed, expected):
    assert lateness.decide(summary, reasons, latency_failed, None)[0] == expected


def test_a_headline_that_is_the_scheduled_latency_is_a_limit_when_late():
    assert lateness.decide(_summary(5_000.0), [], False, None, headline_is_latency=True)[0] == "LOADGEN_LIMIT"
    assert lateness.decide(_summary(50.0), [], False, None, headline_is_latency=True)[0] == "VALID"


# -- the server scenario with lateness injected ----------------------------------------------------------


class LateClock(FakeClock):
    """The fake clock whose every `every`-th sleep ends `late_ns` late (a descheduled load generator)."""

    def __init__(self, late_ns: int, every: int) -> None:
        super().__init__()
        self.late_ns, self.every, self.sleeps = late_ns, every, 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        super().sleep(seconds)
        if self.sleeps % self.every == 0:
            self.advance(self.late_ns)


@pytest.fixture
def capacity(monkeypatch, null_sut, tiny_model_card):
    from runner.sut import BackendSUT

    def run(late_ns: int, service_ns: int, **kw):
        clock = LateClock(late_ns, every=20)
        monkeypatch.setattr(server, "_clock", clock.ns)
        monkeypatch.setattr(server, "_sleep", clock.sleep)
        monkeypatch.setattr(CLOCK, "advance", clock.advance)  # the system's service time moves this clock
        monkeypatch.setattr(CapacityBackend, "SERVICE_NS", service_ns)
        backend = CapacityBackend()
        backend.prepare(tiny_model_card, None)
        s = ServerSettings(**{**dict(target_qps=1_000, latency_bound_ms=15, min_duration_ms=2_000,
                                     min_query_count=1_000, warmup_duration_ms=0, concurrency=1, issuer="thread"),
                              **kw})
        return Server(s).run(BackendSUT(backend, null_sut[1]), null_sut[1])
    return run


def test_injected_lateness_that_fails_the_bound_is_a_load_generator_limit(capacity):
    result = capacity(late_ns=30_000_000, service_ns=100_000)  # 5% of sleeps 30 ms late; capacity 10k QPS
    s = result.summary
    assert result.validity == "LOADGEN_LIMIT" and not result.valid and result.headline_value is None
    assert s["issue_delay_p99_us"] > 150 and not s["issue_delay_within_tolerance"]
    assert result.reasons[0].startswith("load generator could not keep the schedule: issued late by p99")
    assert any(r.startswith("p99 latency") for r in result.reasons[1:])
    assert "not a verdict on the system" in s["recommendation"]


def test_injected_lateness_within_the_bound_stays_valid_and_is_recorded(capacity):
    result = capacity(late_ns=5_000_000, service_ns=100_000)  # 5 ms late now and then: latency still < 15 ms
    assert result.validity == "VALID" and result.headline_value == 1_000
    assert not result.summary["issue_delay_within_tolerance"] and result.summary["issue_delay_p99_us"] > 150


def test_an_overloaded_system_is_invalid_however_late_the_issuer(capacity):
    result = capacity(late_ns=30_000_000, service_ns=2_000_000)  # 500 QPS of capacity against 1,000
    assert result.validity == "INVALID" and result.summary["achieved_qps"] < 0.9 * 1_000
    assert result.reasons[0].startswith("p99 latency")


def test_an_on_time_issuer_leaves_the_verdict_alone(capacity):
    result = capacity(late_ns=0, service_ns=100_000)
    assert result.validity == "VALID" and result.summary["issue_delay_within_tolerance"]
    assert result.summary["issue_delay_tolerance_us"] == 150.0


def test_a_stated_tolerance_is_used(capacity):
    result = capacity(late_ns=5_000_000, service_ns=100_000, lateness_tolerance_us=10_000)
    assert result.summary["issue_delay_within_tolerance"] and result.summary["issue_delay_tolerance_us"] == 10_000


def test_multi_stream_records_its_lateness(null_sut):
    sut, qsl = null_sut
    result = MultiStream(MultiStreamSettings(min_duration_ms=100, min_query_count=100, warmup_duration_ms=0,
                                             lateness_tolerance_us=1e6)).run(sut, qsl)
    s = result.summary
    assert result.validity == "VALID" and s["issue_delay_count"] == s["query_count"]
    assert 0 <= s["issue_delay_p50_us"] <= s["issue_delay_p99_us"] <= s["issue_delay_max_us"]


# -- the peak search ----------------------------------------------------------------------------------


def _probes(capacity: float, limit_from: float, limit_every: int):
    """VALID below capacity; at or above limit_from every probe is a load-generator limit except each
    limit_every-th (0: always a limit there)."""
    count: dict[float, int] = {}

    def probe(qps: float) -> Probe:
        count[qps] = count.get(qps, 0) + 1
        limited = qps >= limit_from and (limit_every == 0 or count[qps] % limit_every != 0)
        return Probe(qps, not limited and qps < capacity, run_id=sum(count.values()), inconclusive=limited,
                     reason="load generator could not keep the schedule" if limited else None)
    return probe


def test_inconclusive_probes_are_repeated_and_never_taken_for_the_limit():
    s = PeakSettings(tolerance=0.02, repeats_near_edge=2, inconclusive_retries=2)
    clean = PeakSearch(s, _probes(10_000, 1e12, 0), 1_000).run()
    noisy = PeakSearch(s, _probes(10_000, 0, 2), 1_000).run()  # every other probe everywhere is a limit
    assert noisy["peak_qps"] == clean["peak_qps"] and noisy["note"] is None
    assert sum(p["inconclusive"] for p in noisy["probes"]) > 0
    for row in noisy["table"]:
        assert row["loadgen_limits"] >= 1 and row["runs"] == {r["target_qps"]: r for r in clean["table"]}[
            row["target_qps"]]["runs"]


def test_a_qps_that_stays_inconclusive_stops_the_search_with_that_reason():
    result = PeakSearch(PeakSettings(inconclusive_retries=2), _probes(10_000, 4_000, 0), 1_000).run()
    assert result["note"].startswith("stopped at 4000 QPS: the load generator could not keep the schedule in 3 "
                                     "probes in a row there")
    assert result["bracket"] == [2_000, None]  # 4,000 QPS is not the system's limit
    rows = {r["target_qps"]: r for r in result["table"]}
    assert rows[4_000] == {"target_qps": 4_000, "runs": 0, "valid": 0, "p_valid": None, "loadgen_limits": 3}


# -- bad input: exit 2, nothing written ----------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--set", "lateness_tolerance_us=0"], "lateness_tolerance_us: Input should be greater than 0"),
    (["--set", "lateness_tolerance_us=-5"], "lateness_tolerance_us: Input should be greater than 0"),
    (["--set", "isolation=dedicated", "--cpus", "0"],
     "isolation=dedicated needs at least 2 CPUs (one for the issuer, one for the system); the run may use 1 (CPU 0)"),
    (["--backend-set", "cpus=0-1x"], "backend onnxruntime: cpus:"),
])
def test_bad_lateness_and_isolation_settings_exit_2_and_write_nothing(tmp_path, digits_models, args, message):
    db = tmp_path / "bad.db"
    done = cli("run", "digits", "--scenario", "server", "--quick", *args, db=db)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    if db.exists():
        assert sqlite3.connect(db).execute("select count(*) from runs").fetchone()[0] == 0


def test_multi_stream_tolerance_is_validated(tmp_path, digits_models):
    done = cli("run", "digits", "--scenario", "multi_stream", "--quick", "--set", "lateness_tolerance_us=0",
               db=tmp_path / "bad.db")
    assert done.returncode == 2 and "scenario multi_stream: lateness_tolerance_us" in done.stderr


def test_a_stored_load_generator_limit_is_neither_a_candidate_nor_a_failure(store):
    from engine.candidates import load
    from reports.badges import YELLOW, run_badge
    from reports.run import render_run_report
    from runner.errors import EngineError

    hashes = {kind: store.put_card(kind, {"kind": kind}, kind * 16, kind) for kind in
              ("task", "model", "backend", "system")}
    run_id = store.create_run(task_name="digits", task_version="1.0.0", model_variant="fp32", backend_name="null",
                              scenario="server", card_hashes=hashes, settings={}, quick=True, compliant=False,
                              provenance="measured", source="test")
    summary = {**_summary(5_000.0), "recommendation": "this run is a load-generator limit"}
    store.record_result(run_id, validity="LOADGEN_LIMIT", validity_reasons=["load generator could not keep it"],
                        summary=summary)
    store.finish_run(run_id, status="complete")
    run = store.get_run(run_id)
    assert run.validity == "LOADGEN_LIMIT"
    with pytest.raises(EngineError, match="1 are load-generator limits, which say nothing about the system"):
        load(store, "digits", "server")
    badge = run_badge(run)
    assert badge.message.startswith("load-generator limit") and badge.color == YELLOW
    html = render_run_report(store, run_id)
    assert "LOADGEN_LIMIT</strong> (the load generator could not keep the schedule" in html
    assert "late by p50 1 us, p99 5 ms (1,000 queries), above its tolerance of 150 us; issued by process" in html
    assert "Recommendation: this run is a load-generator limit" in html


def test_loadgen_runs_the_server_scenario_through_worker_threads(tmp_path, digits_models):
    db = tmp_path / "lg.db"
    done = cli("run", "digits", "--backend", "null", "--scenario", "server", "--loadgen", "mlperf", "--quick",
               "--target-qps", "400", "--set", "latency_bound_ms=1000", "--json", db=db)  # a bound no stall reaches
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["validity"] == "VALID" and run["headline_value"] == 400 and run["summary"]["loadgen"] == "mlperf"
    assert run["summary"]["query_count"] >= 1_024 and "Scenario : Server" in run["summary"]["loadgen_summary"]


def test_a_search_stopped_by_load_generator_limits_prints_them(capsys):
    from infersight.cli.peak import _probe_line, render_search
    from runner.store.records import PeakSearchRecord

    result = PeakSearch(PeakSettings(inconclusive_retries=1), _probes(10_000, 4_000, 0), 1_000).run()
    render_search(PeakSearchRecord(id=7, task_name="digits", backend_name="null", scenario="server", request={},
                                   status="complete", result=result, hostname="here", started_at=datetime.now()))
    text = " ".join(capsys.readouterr().out.split())
    assert "loadgen limits" in text and "4,000 0 0 - 2" in text and "note: stopped at 4000 QPS" in text
    limited = next(p for p in result["probes"] if p["inconclusive"])
    assert "LOADGEN LIMIT (inconclusive)" in _probe_line(limited)
