"""The statistics over a real store: CIs stored when a run finishes, comparisons, replicas, trends."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import update

from analysis import views
from analysis.ci import run_cis
from analysis.load import config_key, resolve_side, runs_frame
from runner.errors import AnalysisError
from runner.loadgen.result import latency_summary
from runner.run import RunRequest, execute_run, prepare_run
from runner.store.schema import runs

QUICK_NULL = {"min_duration_ms": 300, "warmup_duration_ms": 0}


def add_run(store, lat_ns, *, started="2026-01-15", host=None, task_version="1.0.0", model="m1", system="box",
            settings=None):
    """A complete single_stream-like run with these per-query latencies (ns), stored as the runner would."""
    hashes = {}
    for kind, name in (("task", f"synthetic {task_version}"), ("model", model), ("backend", "null"), ("system", system)):
        digest = f"{kind}-{name}".replace(" ", "-")
        store.put_card(kind, {"system_name": name} if kind == "system" else {"name": name}, digest, name)
        hashes[kind] = digest
    run_id = store.create_run(task_name="synthetic", task_version=task_version, model_variant="fp32",
                              backend_name="null", scenario="single_stream", card_hashes=hashes,
                              settings=settings or {"scenario": {"min_query_count": 64}}, quick=False, compliant=True)
    lat = np.asarray(lat_ns, dtype=np.int64)
    completed = np.cumsum(lat)
    store.append_perf_samples(run_id, {"sample_index": np.arange(len(lat)) % 10, "query_index": np.arange(len(lat)),
                                       "scheduled_ns": completed - lat, "issued_ns": completed - lat + 1,
                                       "completed_ns": completed})
    summary = {**latency_summary(lat), "sample_count": len(lat), "query_count": len(lat)}
    store.record_result(run_id, validity="VALID", headline_metric="latency_p90_ms",
                        headline_value=summary["latency_p90_ms"], headline_units="ms", summary=summary)
    store.finish_run(run_id, status="complete")
    with store.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(
            started_at=pd.Timestamp(started, tz="UTC").to_pydatetime(), hostname=host or store.hostname))
    return run_id


def latencies(scale=1.0, n=2000, seed=0):
    return (np.random.default_rng(seed).lognormal(0, 0.1, n) * 1e6 * scale).astype(np.int64)


def test_a_real_run_stores_its_intervals_when_it_finishes(store, digits_models):
    run_id = execute_run(prepare_run(RunRequest("digits", "onnxruntime", "single_stream", quick=True)), store)
    run = store.get_run(run_id)
    stored = run.summary["ci"]
    recomputed = run_cis(store.read_perf_samples(run_id), target_percentile=90)
    assert json.loads(json.dumps(recomputed)) == stored
    p90 = stored["latency_ms"]["p90"]
    assert p90["low"] <= run.summary["latency_p90_ms"] == p90["estimate"] <= p90["high"]
    result = views.analyze_run(store, run_id)
    assert result["ci_source"] == "stored with the run" and result["headline_ci"]["estimate"] == p90["estimate"]
    assert result["config_key"] == config_key(run) and result["replicas"] == [run_id]


def test_a_failing_statistic_never_loses_the_run(store, digits_models, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("injected fault")

    monkeypatch.setattr("analysis.ci.run_cis", boom)
    req = RunRequest("digits", "null", "single_stream", quick=True, scenario_settings=QUICK_NULL)
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.status == "complete" and run.summary["ci"] == {"error": "RuntimeError: injected fault"}
    monkeypatch.undo()
    result = views.analyze_run(store, run.id)  # older or failed: computed on read
    assert result["ci_source"] == "computed from the performance log" and "p90" in result["ci"]["latency_ms"]


def test_offline_run_gets_a_throughput_interval(store, digits_models):
    req = RunRequest("digits", "null", "offline", quick=True, scenario_settings=QUICK_NULL)
    run = store.get_run(execute_run(prepare_run(req), store))
    rate = run.summary["ci"]["throughput"]["samples_per_second"]
    assert rate["low"] <= rate["estimate"] <= rate["high"]
    assert views.headline_ci(run, run.summary["ci"]) == rate


def test_configurations_compare_on_run_level_figures(store):
    a = [add_run(store, latencies(1.0, seed=i), started="2026-02-01") for i in range(3)]
    b = [add_run(store, latencies(1.1, seed=10 + i), started="2026-02-02", system="bigger") for i in range(3)]
    key_a, key_b = config_key(store.get_run(a[0])), config_key(store.get_run(b[0]))
    assert [r.id for r in resolve_side(store, f"config:{key_a[:8]}")] == a
    result = views.compare_refs(store, [f"config:{key_a}", f"config:{key_b}"])
    (c,) = result["comparisons"]
    assert result["unit"] == "runs" and c["n_a"] == c["n_b"] == 3
    assert c["verdict"] == "different" and c["better"] is False  # 10% slower latency
    assert c["ratio_geometric_means"]["low"] < 1.1 < c["ratio_geometric_means"]["high"]


def test_single_runs_fall_back_to_batches_with_a_warning(store):
    a, b = add_run(store, latencies(1.0, n=4000)), add_run(store, latencies(1.0, n=4000, seed=1), model="m1")
    result = views.compare_refs(store, [str(a), str(b)], margin=0.05)
    assert result["unit"] == "batches" and "within-run noise only" in result["warnings"][0]
    assert result["comparisons"][0]["n_b"] == 16


def test_checked_metadata_must_match_unless_forced(store):
    a = add_run(store, latencies())
    b = add_run(store, latencies(seed=2), task_version="1.1.0", model="m2")
    with pytest.raises(AnalysisError, match="task_version differs.*model_hash differs.*--force"):
        views.compare_refs(store, [str(a), str(b)])
    forced = views.compare_refs(store, [str(a), str(b)], force=True)
    assert any("task_version" in w for w in forced["warnings"])


def test_replicas_across_hosts_and_days(store):
    # 2 hosts x 2 days x 2 runs: every level can be estimated
    ids = [add_run(store, latencies(1.0 + 0.003 * i, seed=i), host=f"h{i % 2}", started=f"2026-03-0{1 + i // 4}")
           for i in range(8)]
    result = views.repro_of_config(store, ids[0])
    assert result["run_ids"] == ids and result["reproducible"]
    assert set(result["components"]["components"]) == {"host", "day", "run", "within"}
    assert result["components"]["n_groups"] == {"host": 2, "day": 4, "run": 8}
    # one run a day: day and run cannot be told apart, and the analysis says so
    single = [add_run(store, latencies(seed=20 + i), system="other", started=f"2026-04-0{1 + i}") for i in range(3)]
    notes = views.repro_of_config(store, single[0])["components"]["notes"]
    assert any("each day holds one run" in n for n in notes)
    with pytest.raises(AnalysisError, match="reproducibility needs 2"):
        views.repro_of_config(store, add_run(store, latencies(), system="lonely"))


def test_trend_by_quarter_over_the_store(store):
    for q in range(6):
        for k in range(2):
            add_run(store, latencies(1.06 ** q, seed=10 * q + k), started=f"{2024 + q // 4}-{3 * (q % 4) + 1:02d}-1{k}")
    frame = runs_frame(store)
    assert len(frame) == 12 and frame["started_at"].is_monotonic_increasing
    result = views.trends(store, by="quarter")
    (group,) = result["groups"]
    assert group["group"]["system"] == "box" and group["lower_is_better"] is True
    assert [p["period"] for p in group["periods"]][:2] == ["2024Q1", "2024Q2"]
    assert group["mann_kendall"]["trend"] == "increasing"
    assert group["theil_sen"]["change_low"] < 0.06 < group["theil_sen"]["change_high"]


def test_empty_history_and_bad_references(store):
    with pytest.raises(AnalysisError, match="history is empty"):
        views.trends(store, task="nothing")
    with pytest.raises(AnalysisError, match="no complete run has a configuration key"):
        resolve_side(store, "config:ffff")
    with pytest.raises(AnalysisError, match="at least 4 hex digits"):
        resolve_side(store, "config:f")
