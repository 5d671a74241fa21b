"""The server scenario: Poisson arrivals, latency from the scheduled time, SLA validity, early stopping.

A system of known capacity is simulated deterministically with a fake clock that only the
system under test moves (each query takes a fixed service time); the real CLI runs digits on
onnxruntime at a low and an impossible QPS.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from conftest import cli
from runner import registry
from runner.backends.null import NullBackend
from runner.errors import BackendError
from runner.loadgen.poisson import poisson_gaps_ns, server_schedule
from runner.scenarios import server
from runner.scenarios.server import Server, ServerSettings, server_summary, server_verdict
from runner.sut import BackendSUT


class FakeClock:
    """A clock that moves only when told: by a sleep (at least 1 us), by the system's service time, and
    by each reading: 1 ns, doubling with every further reading in a row (a spin on it ends quickly)."""

    def __init__(self) -> None:
        self.now, self.step = 10**12, 1

    def ns(self) -> int:
        self.now += self.step
        self.step *= 2
        return self.now

    def sleep(self, seconds: float) -> None:
        self.advance(max(int(seconds * 1e9), 1_000))

    def advance(self, ns: int) -> None:
        self.now += ns
        self.step = 1


CLOCK = FakeClock()


class CapacityBackend(NullBackend):
    """The null backend taking SERVICE_NS of fake time per sample: one worker serves 1e9 / SERVICE_NS QPS."""

    name = "capacity"
    SERVICE_NS = 100_000  # 10,000 QPS on one worker

    def run_batch(self, inputs):
        CLOCK.advance(self.SERVICE_NS * len(next(iter(inputs.values()))))
        return super().run_batch(inputs)


@pytest.fixture
def fake_clock(monkeypatch):
    """The server scenario's workers read CLOCK (CapacityBackend advances it)."""
    monkeypatch.setattr(server, "_clock", CLOCK.ns)
    monkeypatch.setattr(server, "_sleep", CLOCK.sleep)
    return CLOCK


def _settings(**kw) -> ServerSettings:
    base = dict(target_qps=5_000, latency_bound_ms=15, min_duration_ms=2_000, min_query_count=1_000,
                warmup_duration_ms=0, concurrency=1, issuer="thread")  # a process cannot read the fake clock
    return ServerSettings(**{**base, **kw})


@pytest.fixture
def capacity_sut(null_sut, tiny_model_card):
    _, qsl = null_sut
    backend = CapacityBackend()
    backend.prepare(tiny_model_card, None)
    return BackendSUT(backend, qsl), qsl


# -- the Poisson generator --------------------------------------------------------------------------

def test_poisson_gaps_are_exponential_at_the_target_rate():
    seed = ServerSettings.model_fields["schedule_rng_seed"].default  # MLPerf v4.1's schedule seed
    gaps = poisson_gaps_ns(10_000, 200_000, np.random.default_rng(seed))
    # Kolmogorov-Smirnov against the exponential distribution with mean 1 / 10,000 s = 100,000 ns
    assert stats.kstest(gaps, "expon", args=(0, 100_000)).pvalue > 0.01
    assert len(gaps) / (gaps.sum() / 1e9) == pytest.approx(10_000, rel=0.01)


def test_poisson_ks_p_values_over_many_seeds_are_uniform():
    # Under the null hypothesis a KS p-value is uniform on [0, 1]: check that across 200 seeds.
    pvalues = [stats.kstest(poisson_gaps_ns(10_000, 5_000, np.random.default_rng(seed)), "expon",
                            args=(0, 100_000)).pvalue for seed in range(200)]
    assert stats.kstest(pvalues, "uniform").pvalue > 0.01


def test_schedule_meets_both_minimums_on_scheduled_times_and_is_seeded():
    a = server_schedule(10_000, 7, min_duration_ms=2_000, min_query_count=1_000, max_duration_ms=60_000)
    assert np.all(np.diff(a) >= 0) and a[0] > 0
    assert a[-1] >= 2_000_000_000 > a[-2]  # stops at the first arrival past the minimum duration
    assert len(a) / (a[-1] / 1e9) == pytest.approx(10_000, rel=0.01)
    assert stats.kstest(np.diff(a), "expon", args=(0, 100_000)).pvalue > 0.01
    assert np.array_equal(a, server_schedule(10_000, 7, min_duration_ms=2_000, min_query_count=1_000,
                                             max_duration_ms=60_000))
    assert not np.array_equal(a[:100], server_schedule(10_000, 8, min_duration_ms=2_000, min_query_count=1_000,
                                                       max_duration_ms=60_000)[:100])
    # the query count dominates at a low rate; max_query_count and max_duration_ms cut the schedule
    assert len(server_schedule(100, 7, min_duration_ms=1_000, min_query_count=5_000, max_duration_ms=600_000)) == 5_000
    assert len(server_schedule(10_000, 7, min_duration_ms=2_000, min_query_count=1, max_duration_ms=60_000,
                               max_query_count=300)) == 300
    cut = server_schedule(100, 7, min_duration_ms=1_000, min_query_count=5_000, max_duration_ms=2_000)
    assert cut[-1] <= 2_000_000_000 and len(cut) < 5_000


# -- early stopping through the scenario's own validity logic -----------------------------------------

def _synthetic(n: int, over: int, bound_ms: float = 15.0) -> dict[str, np.ndarray]:
    """n queries 1 ms apart, each 1 ms long except `over` of them at twice the bound."""
    sched = np.arange(1, n + 1, dtype=np.int64) * 1_000_000
    lat = np.full(n, 1_000_000, dtype=np.int64)
    lat[np.linspace(0, n - 1, over).astype(int)] = int(2 * bound_ms * 1e6)
    return {"sample_index": np.zeros(n, np.int64), "query_index": np.arange(n), "scheduled_ns": sched,
            "issued_ns": sched, "completed_ns": sched + lat}


@pytest.mark.parametrize("over, total", [(0, 459), (1, 662), (10, 2010)])
def test_server_early_stopping_counts_of_the_mlperf_rules(over, total):
    # MLPerf Inference rules: p99, tolerance 0, confidence 0.99: 459 queries with 0 over the bound,
    # 662 with 1, 2,010 with 10.
    s = _settings(min_query_count=1, min_duration_ms=1)
    for n, valid in ((total, True), (total - 1, False)):
        summary = server_summary(_synthetic(n, over), 0, n, s)
        reasons, _ = server_verdict(summary, s, None)
        assert summary["over_bound_count"] == over and summary["early_stopping_min_queries"] == total
        assert (not reasons) is valid, reasons
    summary = server_summary(_synthetic(total - 1, over), 0, total - 1, s)
    reason = server_verdict(summary, s, None)[0][0]
    assert f"early stopping needs at least {total:,} queries with {over:,} over the bound" in reason
    assert f"completed {total - 1:,}" in reason


def test_p99_over_the_bound_is_invalid_with_the_numbers_and_a_recommendation():
    s = _settings(min_query_count=1, min_duration_ms=1, target_qps=1_000)
    summary = server_summary(_synthetic(30_000, 312), 0, 30_000, s)  # 1.04% over: p99 at twice the bound
    reasons, advice = server_verdict(summary, s, None)
    assert reasons[0].startswith("p99 latency 30 ms > bound 15 ms: 312 of 30,000 queries (1.04%) over the bound")
    assert "lower target QPS to ~" in reasons[0] and advice in reasons[0]
    assert summary["within_bound_fraction"] == pytest.approx(1 - 312 / 30_000)


# -- runs on simulated and null systems -----------------------------------------------------------

def test_a_system_below_capacity_is_valid_and_latency_counts_from_the_scheduled_time(fake_clock, capacity_sut):
    sut, qsl = capacity_sut
    chunks = []
    result = Server(_settings(target_qps=5_000)).run(sut, qsl, sink=chunks.append)
    rec, s = result.records, result.summary
    assert result.valid, result.reasons
    assert result.headline_metric == "queries_per_second" and result.headline_value == 5_000
    assert result.headline_units == "queries/s" and result.effective_settings["concurrency"] == 1
    expected = server_schedule(5_000, result.effective_settings["schedule_rng_seed"], min_duration_ms=2_000,
                               min_query_count=1_000, max_duration_ms=600_000)
    assert np.array_equal(rec["scheduled_ns"] - rec["scheduled_ns"][0], expected - expected[0])
    assert np.array_equal(rec["query_index"], np.arange(len(expected)))
    assert np.all(rec["issued_ns"] >= rec["scheduled_ns"]) and np.all(rec["completed_ns"] > rec["issued_ns"])
    # service takes exactly 0.1 ms of (fake) time; a query waits while the previous one is served
    assert np.all(rec["completed_ns"] - rec["issued_ns"] >= 100_000)
    assert s["latency_min_ms"] >= 0.1 and s["queueing_delay_p99_ms"] > 0
    assert s["over_bound_count"] == 0 and s["within_bound_fraction"] == 1.0
    assert np.array_equal(np.concatenate([c["query_index"] for c in chunks]), rec["query_index"])


def test_a_system_over_capacity_is_invalid_and_told_to_lower_the_qps(fake_clock, capacity_sut):
    sut, qsl = capacity_sut
    result = Server(_settings(target_qps=20_000, stop_when_invalid=False)).run(sut, qsl)
    s = result.summary
    assert not result.valid and result.headline_value is None
    assert s["achieved_qps"] == pytest.approx(10_000, rel=0.01)  # the capacity: 1 / 0.1 ms
    text = " | ".join(result.reasons)
    assert "p99 latency" in text and "> bound 15 ms" in text and "over the bound" in text
    assert "lower target QPS to ~9,000" in text  # 90% of the 10,000 queries/s completed
    assert s["recommendation"].startswith("lower target QPS to ~9,000")


def test_an_overloaded_run_stops_once_it_cannot_pass(fake_clock, capacity_sut):
    sut, qsl = capacity_sut
    result = Server(_settings(target_qps=1_000_000, min_duration_ms=1_000)).run(sut, qsl)
    assert not result.valid
    assert result.summary["scheduled_query_count"] == pytest.approx(1_000_000, rel=0.01)
    if result.summary["stopped_early"]:  # the watching thread looks 4 times a second
        assert result.reasons[-1].startswith("stopped early after")
        assert result.summary["query_count"] < result.summary["scheduled_query_count"]


def test_a_system_slower_than_the_bound_is_told_that_lower_qps_will_not_help(fake_clock, capacity_sut,
                                                                            monkeypatch):
    sut, qsl = capacity_sut
    monkeypatch.setattr(CapacityBackend, "SERVICE_NS", 20_000_000)  # 20 ms a query > the 15 ms bound
    result = Server(_settings(target_qps=10, min_duration_ms=10_000, min_query_count=50)).run(sut, qsl)
    assert not result.valid
    assert "a lower target QPS will not help" in result.reasons[0]


def test_null_backend_run_with_concurrent_workers(null_sut):
    sut, qsl = null_sut
    result = Server(_settings(target_qps=20_000, min_duration_ms=300, concurrency=3,
                              latency_bound_ms=1_000)).run(sut, qsl)
    rec = result.records
    assert result.valid, result.reasons
    assert result.effective_settings["concurrency"] == 3
    assert np.all(rec["scheduled_ns"] <= rec["issued_ns"]) and np.all(rec["issued_ns"] <= rec["completed_ns"])
    assert set(np.unique(rec["sample_index"])) <= set(np.arange(qsl.total_sample_count))


def test_a_cut_schedule_misses_the_minimums():
    s = _settings(min_query_count=2_000, max_query_count=500, min_duration_ms=1_000)
    rec = _synthetic(500, 0)
    reasons, _ = server_verdict(server_summary(rec, 0, 500, s), s, None)
    assert any(r.startswith("min duration not met: the last query was scheduled at 0.500 s") for r in reasons)
    assert "min query count not met: 500 queries < min_query_count 2,000" in reasons


class FailingBackend(NullBackend):
    name = "failing"

    def run_batch(self, inputs):
        raise BackendError("injected fault")


def test_a_failing_system_fails_the_run(null_sut, tiny_model_card):
    _, qsl = null_sut
    backend = FailingBackend()
    backend.prepare(tiny_model_card, None)
    with pytest.raises(BackendError, match="injected fault"):
        Server(_settings(min_duration_ms=100)).run(BackendSUT(backend, qsl), qsl)


def test_settings_reject_impossible_values():
    for bad in ({"target_qps": 0}, {"target_qps": -5}, {"latency_bound_ms": 0}, {"concurrency": 0},
                {"samples_per_query": 2}, {"early_stopping_tolerance": 0.995}, {"min_query_count": 0}):
        with pytest.raises(ValidationError):
            _settings(**bad)
    with pytest.raises(ValidationError):
        ServerSettings(latency_bound_ms=15)  # target_qps has no default: the task card gives it


# -- the real CLI on digits (onnxruntime) ------------------------------------------------------------

@pytest.fixture(scope="module")
def server_db(tmp_path_factory, digits_models):
    """A store with a VALID server run at a low QPS (run 1) and an INVALID one at an impossible QPS (run 2)."""
    db = tmp_path_factory.mktemp("server") / "server.db"
    cli("run", "digits", "--scenario", "server", "--quick", "--target-qps", "300", "--threads", "1",
        "--set", "latency_bound_ms=1000", db=db, check=True)  # a bound no stall of a loaded machine reaches
    cli("run", "digits", "--scenario", "server", "--quick", "--target-qps", "200000", "--threads", "1", db=db,
        check=True)
    return db


def test_digits_server_run_at_a_low_qps_is_valid_and_complete(server_db):
    run = json.loads(cli("show", "1", "--json", db=server_db, check=True).stdout)["run"]
    s = run["summary"]
    assert run["status"] == "complete" and run["validity"] == "VALID", run["validity_reasons"]
    assert run["scenario"] == "server" and run["headline_metric"] == "queries_per_second"
    assert run["headline_value"] == 300 and run["headline_units"] == "queries/s"
    assert s["query_count"] >= 1_024 and s["over_bound_count"] == 0 and s["achieved_qps"] > 0
    assert run["quick"] and not run["compliant"] and run["accuracy_passed"]
    assert cli("validate", "1", db=server_db).returncode == 0


def test_digits_server_run_at_an_impossible_qps_is_explained(server_db):
    run = json.loads(cli("show", "2", "--json", db=server_db, check=True).stdout)["run"]
    assert run["status"] == "complete" and run["validity"] == "INVALID" and run["headline_value"] is None
    reason = run["validity_reasons"][0]
    assert reason.startswith("p99 latency") and "> bound 15 ms" in reason and "over the bound" in reason
    suggested = float(reason.split("lower target QPS to ~")[1].split()[0].replace(",", ""))
    assert 0 < suggested < 200_000
    text = " ".join(cli("show", "2", db=server_db, check=True).stdout.split())
    assert "INVALID because p99 latency" in text and "recommendation: lower target QPS to ~" in text
    assert "server: target 200,000 QPS" in text and "issued by " in text and "late by p50" in text
    # the calibration's choice of a pinned or floating issuer, in the run's plan and in its system card
    assert "; issuer pinned to CPU" in text or "; issuer floating over CPU" in text
    assert any(f"issuer {how} (trial p99 lateness: pinned" in text for how in ("pinned", "floating"))


@pytest.mark.parametrize("args, message", [
    (["--target-qps", "0"], "scenario server: target_qps: Input should be greater than 0"),
    (["--set", "target_qps=-5"], "scenario server: target_qps: Input should be greater than 0"),
    (["--set", "latency_bound_ms=0"], "scenario server: latency_bound_ms: Input should be greater than 0"),
    (["--set", "concurrency=0"], "scenario server: concurrency: Input should be greater than or equal to 1"),
])
def test_bad_server_settings_exit_2_and_write_nothing(tmp_path, digits_models, args, message):
    db = tmp_path / "bad.db"
    proc = cli("run", "digits", "--scenario", "server", "--quick", *args, db=db)
    assert proc.returncode == 2, proc.stderr
    assert message in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert json.loads(cli("runs", "--json", db=db, check=True).stdout) == []


def test_the_server_scenario_is_registered():
    assert registry.get("scenario", "server") is Server
