"""The "multi_stream" scenario: MLPerf MultiStream semantics, several concurrent streams, the fairness collector."""

from __future__ import annotations

import json
import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from runner.backends.null import NullBackend
from runner.errors import SettingsError
from runner.loadgen import early_stopping
from runner.run import RunRequest, execute_run, prepare_run
from runner.scenarios.multi_stream import MultiStream, MultiStreamSettings, fairness, jain_index
from runner.sut import BackendSUT
from runner.validate import check_run

from conftest import cli

MS = 1_000_000


def _settings(**kw) -> MultiStreamSettings:
    return MultiStreamSettings(**{"min_duration_ms": 100, "warmup_duration_ms": 10, **kw})


# -- Jain's fairness index -------------------------------------------------------------------------

@pytest.mark.parametrize("values, expected", [
    ([1, 1, 1, 1], 1.0),
    ([1, 0, 0, 0], 0.25),                  # one of four served: 1/n
    ([3, 3, 0, 0, 0], 0.4),                # k of n equally served: k/n (Jain, Chiu and Hawe 1984)
    ([5, 5, 5], 1.0),
    ([1, 2, 3, 4, 5], 225 / 275),          # (15)^2 / (5 * 55)
])
def test_jain_index_hand_computed(values, expected):
    assert jain_index(values) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("normalised, published", [([1, 3, 5], 0.77), ([1, 4, 5], 0.79), ([1, 2, 5], 0.71)])
def test_jain_index_matches_the_published_example(normalised, published):
    """Jain, Durresi and Babic, "Throughput Fairness Index: An Explanation", ATM Forum/99-0045 (1999):
    a scheme giving 50, 30, 50 Mbps where 50, 10, 10 are fair has normalised throughputs 1, 3, 5 and
    index 0.77; 1, 4, 5 give 0.79 and 1, 2, 5 give 0.71 (their figures, to two decimals)."""
    assert round(jain_index(normalised), 2) == published
    assert jain_index([50 / 50, 30 / 10, 50 / 10]) == pytest.approx(81 / 105)
    assert jain_index(np.array(normalised) * 1e6) == pytest.approx(jain_index(normalised))  # scale-free


def test_jain_index_is_undefined_without_allocations():
    assert jain_index([]) is None and jain_index([0, 0]) is None


def test_fairness_collector_on_hand_built_streams():
    # stream 0: 4 back-to-back queries of 1, 2, 3, 4 ms over 10 ms (400 queries/s)
    # stream 1: 2 queries of 10 and 20 ms over 30 ms (66.7 queries/s); stream 2: nothing
    sched = np.array([0, 1, 3, 6, 0, 10]) * MS
    done = np.array([1, 3, 6, 10, 10, 30]) * MS
    sid = np.array([0, 0, 0, 0, 1, 1])
    f = fairness(done - sched, sid, sched, done, 3)
    s0, s1, s2 = f["per_stream"]
    assert (s0["query_count"], s1["query_count"], s2["query_count"]) == (4, 2, 0)
    assert s0["queries_per_second"] == pytest.approx(400) and s1["queries_per_second"] == pytest.approx(200 / 3)
    assert s2["queries_per_second"] == 0.0 and s2["latency_p99_ms"] is None
    # LoadGen's percentile: sorted[min(n - 1, floor(n * p))]
    assert (s0["latency_p50_ms"], s0["latency_p90_ms"], s0["latency_p99_ms"]) == (3.0, 4.0, 4.0)
    assert (s1["latency_p50_ms"], s1["latency_p99_ms"]) == (20.0, 20.0)
    assert (s0["latency_mean_ms"], s1["latency_mean_ms"]) == (2.5, 15.0)
    # throughputs 6 : 1 : 0 -> 49 / (3 * 37); mean latencies 1 : 6 over the served streams -> 49 / 74
    assert f["jain_index_throughput"] == pytest.approx(float(Fraction(49, 111)))
    assert f["jain_index_mean_latency"] == pytest.approx(float(Fraction(49, 74)))
    assert (f["worst_stream"], f["worst_p99_ms"], f["best_stream"], f["best_p99_ms"]) == (1, 20.0, 0, 4.0)
    assert f["worst_to_best_p99"] == pytest.approx(5.0)


# -- early stopping and settings --------------------------------------------------------------------

def test_p99_early_stopping_needs_662_queries_as_mlperf_min_query_count():
    assert early_stopping.min_queries(1, 0.99) == 662
    assert MultiStreamSettings().min_query_count == 662 and MultiStreamSettings().samples_per_query == 8
    lat = np.arange(1, 663) * 1000
    assert early_stopping.percentile_estimate(lat[:661], 0.99) == (None, 662)
    assert early_stopping.percentile_estimate(lat, 0.99) == (662_000, 662)  # t = 1: the largest latency


@pytest.mark.parametrize("field, value, message", [
    ("streams", 0, "greater than or equal to 1"), ("samples_per_query", 0, "greater than or equal to 1"),
    ("streams", -3, "greater than or equal to 1"), ("min_query_count", 0, "greater than 0"),
])
def test_bad_settings_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        MultiStreamSettings(**{field: value})


# -- the scenario on the null backend ----------------------------------------------------------------

def _queries(rec, spq):
    """One row per query (every sample row of a query shares its timestamps and stream)."""
    for name in ("query_index", "scheduled_ns", "issued_ns", "completed_ns", "stream_id"):
        per_query = rec[name].reshape(-1, spq)
        assert np.all(per_query == per_query[:, :1]), name
    return {name: rec[name][::spq] for name in rec}


def _back_to_back(q, stream):
    mine = q["stream_id"] == stream
    sched, done = q["scheduled_ns"][mine], q["completed_ns"][mine]
    assert np.all(sched[1:] >= done[:-1])  # the next query when the previous one completes (or later)
    return mine.sum()


def test_one_stream_issues_queries_of_eight_samples_back_to_back(null_sut):
    sut, qsl = null_sut
    chunks = []
    result = MultiStream(_settings()).run(sut, qsl, sink=chunks.append)
    rec, n = result.records, result.summary["query_count"]
    assert result.valid and result.reasons == [] and n >= 662
    assert result.summary["sample_count"] == len(rec["sample_index"]) == 8 * n
    q = _queries(rec, 8)
    assert np.array_equal(q["query_index"], np.arange(n)) and set(q["stream_id"]) == {0}
    assert _back_to_back(q, 0) == n
    assert np.all(q["scheduled_ns"] <= q["issued_ns"]) and np.all(q["issued_ns"] <= q["completed_ns"])
    merged = {k: np.concatenate([c[k] for c in chunks]) for k in rec}
    order = np.argsort(merged["query_index"], kind="stable")
    assert all(np.array_equal(merged[k][order], rec[k]) for k in rec)  # every record reached the sink once
    lat = q["completed_ns"] - q["scheduled_ns"]
    assert result.headline_metric == "latency_p99_ms"
    assert result.headline_value == early_stopping.percentile_estimate(lat, 0.99)[0] / 1e6
    assert result.summary["duration_ns"] >= 100 * MS
    assert np.isin(rec["sample_index"], np.arange(qsl.total_sample_count)).all()


def test_sample_order_is_seeded(null_sut):
    sut, qsl = null_sut
    s = _settings(min_query_count=700, max_query_count=700, min_duration_ms=1, samples_per_query=4)
    a = MultiStream(s).run(sut, qsl).records["sample_index"]
    b = MultiStream(s).run(sut, qsl).records["sample_index"]
    c = MultiStream(s.model_copy(update={"sample_index_rng_seed": 7})).run(sut, qsl).records["sample_index"]
    assert len(a) == 2800 and np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(np.unique(a)) <= qsl.performance_sample_count


def test_large_queries_draw_several_blocks_of_sample_orders(null_sut):
    sut, qsl = null_sut  # 32,768 samples a block: 10 queries of 3,000 samples each
    s = _settings(min_query_count=25, max_query_count=25, min_duration_ms=1, samples_per_query=3000, streams=2)
    runs = [MultiStream(s).run(sut, qsl).records for _ in range(2)]
    rows = [[r["sample_index"][r["stream_id"] == j].reshape(-1, 3000) for j in (0, 1)] for r in runs]
    assert all(len(r["sample_index"]) == 75_000 for r in runs)
    assert max(len(rows[0][0]), len(rows[0][1])) > 10  # a stream went past its first block
    for j in (0, 1):  # each stream's order is seeded (which stream issues how many queries is not)
        common = min(len(rows[0][j]), len(rows[1][j]))
        assert np.array_equal(rows[0][j][:common], rows[1][j][:common])
    assert not np.array_equal(rows[0][0][:2], rows[0][1][:2])  # each stream has its own order


def test_several_streams_each_run_back_to_back_and_are_counted(null_sut):
    sut, qsl = null_sut
    result = MultiStream(_settings(streams=3, samples_per_query=2)).run(sut, qsl)
    q = _queries(result.records, 2)
    n = result.summary["query_count"]
    assert np.array_equal(np.sort(q["query_index"]), np.arange(n))  # one query index space over all streams
    counts = [_back_to_back(q, j) for j in range(3)]
    f = result.summary["fairness"]
    assert [p["query_count"] for p in f["per_stream"]] == counts and sum(counts) == n
    assert result.valid and result.summary["streams"] == 3


class OneSlowStream(NullBackend):
    """A null backend that sleeps 5 ms whenever stream 1's thread calls it: an unfair system."""

    def run_batch(self, inputs):
        if threading.current_thread().name == "multi_stream-1":
            time.sleep(0.005)
        return super().run_batch(inputs)


def test_fairness_collector_finds_the_slow_stream(null_sut, tiny_model_card):
    _, qsl = null_sut
    backend = OneSlowStream()
    backend.prepare(tiny_model_card, None)
    result = MultiStream(_settings(streams=2, min_duration_ms=300)).run(BackendSUT(backend, qsl), qsl)
    q = _queries(result.records, 8)
    f = result.summary["fairness"]
    assert f["worst_stream"] == 1 and f["best_stream"] == 0 and f["worst_to_best_p99"] > 1
    # recomputed from the per-query records, independently of the collector
    lat = q["completed_ns"] - q["scheduled_ns"]
    rates = []
    for j, p in enumerate(f["per_stream"]):
        mine = q["stream_id"] == j
        ordered = np.sort(lat[mine])
        assert p["latency_p99_ms"] == ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6
        rates.append(mine.sum() / (q["completed_ns"][mine].max() - q["scheduled_ns"][mine].min()))
    assert f["per_stream"][1]["latency_p50_ms"] >= 5.0
    jain = sum(rates) ** 2 / (2 * sum(r * r for r in rates))
    assert f["jain_index_throughput"] == pytest.approx(jain) and jain < 0.9


def test_max_query_count_is_exact_and_too_few_queries_are_invalid(null_sut):
    sut, qsl = null_sut
    s = _settings(streams=2, max_query_count=300, min_duration_ms=60_000, max_duration_ms=60_000)
    result = MultiStream(s).run(sut, qsl)
    assert result.summary["query_count"] == 300 and len(result.records["sample_index"]) == 2400
    assert not result.valid and result.headline_value is None
    text = " | ".join(result.reasons)
    assert "min query count not met: 300 queries (of 8 samples, over 2 streams) < min_query_count 662" in text
    assert "early stopping needs at least 662 queries for a p99 estimate at 99% confidence; the run issued 300" in text
    assert "min duration not met" in text


class FailsOnTheFiftiethBatch(NullBackend):
    def run_batch(self, inputs):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 50:
            raise RuntimeError("injected fault")
        return super().run_batch(inputs)


def test_a_failure_in_a_stream_thread_reaches_the_caller(null_sut, tiny_model_card):
    _, qsl = null_sut
    backend = FailsOnTheFiftiethBatch()
    backend.prepare(tiny_model_card, None)
    with pytest.raises(RuntimeError, match="injected fault"):
        MultiStream(_settings(streams=2, warmup_duration_ms=0)).run(BackendSUT(backend, qsl), qsl)


# -- real runs of digits on onnxruntime --------------------------------------------------------------

@pytest.mark.parametrize("streams", [1, 2])
def test_digits_multi_stream_run_is_complete_and_validated(store, db_path, digits_models, streams):
    req = RunRequest("digits", scenario="multi_stream", quick=True, scenario_settings={"streams": streams})
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.status == "complete" and run.validity == "VALID", run
    assert check_run(store, run.id) == []
    assert run.headline_metric == "latency_p99_ms" and run.headline_value > 0
    assert run.summary["effective_settings"]["samples_per_query"] == 8  # from the task card
    rec = store.read_perf_samples(run.id)
    n = run.summary["query_count"]
    assert n >= 662 and len(rec["sample_index"]) == 8 * n
    q = _queries(rec, 8)
    assert sorted(set(q["stream_id"].tolist())) == list(range(streams))
    assert [p["query_count"] for p in run.summary["fairness"]["per_stream"]] == \
        [int((q["stream_id"] == j).sum()) for j in range(streams)]
    shown = cli("show", str(run.id), db=db_path, check=True).stdout
    assert ("fairness over 2 streams: Jain's index" in shown) == (streams == 2)


def test_digits_multi_stream_too_few_queries_is_invalid_with_its_reason(store, db_path, digits_models):
    req = RunRequest("digits", scenario="multi_stream", quick=True, scenario_settings={"max_query_count": 100})
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.status == "complete" and run.validity == "INVALID" and run.headline_value is None
    assert check_run(store, run.id) == []
    assert ("early stopping needs at least 662 queries for a p99 estimate at 99% confidence; the run issued 100"
            in run.validity_reasons)
    shown = " ".join(cli("show", str(run.id), db=db_path, check=True).stdout.split())
    assert "INVALID because min query count not met: 100 queries" in shown


@pytest.mark.parametrize("setting, message", [
    ("streams=0", "scenario multi_stream: streams: Input should be greater than or equal to 1"),
    ("samples_per_query=0", "scenario multi_stream: samples_per_query: Input should be greater than or equal to 1"),
    ("stream=2", "scenario multi_stream: stream: unknown field"),
])
def test_bad_input_on_the_command_line_exits_2_and_writes_nothing(tmp_path, digits_models, setting, message):
    db = tmp_path / "bad.db"
    proc = cli("run", "digits", "--scenario", "multi_stream", "--quick", "--set", setting, db=db)
    assert proc.returncode == 2, proc.stderr
    assert message in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr
    assert json.loads(cli("runs", "--json", db=db, check=True).stdout) == []


def test_official_loadgen_runs_one_stream_and_refuses_several(store, digits_models):
    pytest.importorskip("mlperf_loadgen")
    with pytest.raises(SettingsError, match="--loadgen mlperf runs multi_stream with one stream"):
        prepare_run(RunRequest("digits", scenario="multi_stream", loadgen="mlperf", scenario_settings={"streams": 2}))
    req = RunRequest("digits", scenario="multi_stream", quick=True, loadgen="mlperf")
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.status == "complete" and run.validity == "VALID", run
    assert run.headline_metric == "latency_p99_ms" and run.headline_value > 0
    assert "Scenario : MultiStream" in run.summary["loadgen_summary"]
    rec = store.read_perf_samples(run.id)
    assert len(rec["sample_index"]) == 8 * len(np.unique(rec["query_index"])) >= 8 * 662
