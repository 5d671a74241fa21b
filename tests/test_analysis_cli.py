"""`infersight analyze`, `compare`, `repro` and `trend` through the real CLI in a subprocess."""

from __future__ import annotations

import json

from conftest import cli
from test_analysis_store import add_run, latencies

from runner.run import RunRequest, execute_run, prepare_run


def test_analyze_prints_and_emits_the_intervals(store, db_path, digits_models):
    req = RunRequest("digits", "null", "single_stream", quick=True,
                     scenario_settings={"min_duration_ms": 300, "warmup_duration_ms": 0})
    run_id = execute_run(prepare_run(req), store)
    text = cli("analyze", str(run_id), db=db_path, check=True).stdout
    assert "latency p90 (ms)" in text and "Ljung-Box" in text
    # independent samples get exact order-statistic intervals; autocorrelated ones (a busy machine) batch methods
    independent = "no autocorrelation found" in text
    assert ("order statistics" in text) if independent else ("AUTOCORRELATED" in text and "batch" in text)
    data = json.loads(cli("analyze", str(run_id), "--json", "--confidence", "0.99", db=db_path, check=True).stdout)
    assert data["ci"]["confidence"] == 0.99 and data["ci_source"] == "computed from the performance log"
    assert data["headline_ci"]["low"] <= data["headline_ci"]["estimate"] <= data["headline_ci"]["high"]


def test_compare_refuses_differing_metadata_without_force(store, db_path):
    a = add_run(store, latencies())
    b = add_run(store, latencies(1.2, seed=1), model="m2")
    refused = cli("compare", str(a), str(b), db=db_path)
    assert refused.returncode == 2 and "model_hash differs" in refused.stderr and "--force" in refused.stderr
    forced = cli("compare", str(a), str(b), "--force", "--json", db=db_path, check=True)
    (c,) = json.loads(forced.stdout)["comparisons"]
    assert c["verdict"] == "different" and c["better"] is False


def test_repro_measures_replicas_and_analyses_them(store, db_path, digits_models):
    proc = cli("repro", "digits", "--backend", "null", "--scenario", "single_stream", "--quick", "-n", "2",
               "--set", "min_duration_ms=300", "--set", "warmup_duration_ms=0", "--json", db=db_path, check=True)
    result = json.loads(proc.stdout)
    assert result["run_ids"] == [1, 2] and result["metric"] == "latency_p90_ms"
    assert {"reproducible", "cv", "runs_needed", "icc"} <= set(result)
    assert [store.get_run(i).label for i in (1, 2)] == ["repro 1/2", "repro 2/2"]
    text = cli("repro", "--config", "1", db=db_path, check=True).stdout
    assert "configuration" in text and "variance components (REML" in text


def test_trend_by_quarter_and_an_empty_history(store, db_path):
    empty = cli("trend", db=db_path)
    assert empty.returncode == 2 and "history is empty" in empty.stderr
    for q in range(4):
        add_run(store, latencies(1.0 + 0.1 * q, seed=q), started=f"2025-{3 * q + 1:02d}-15")
    data = json.loads(cli("trend", "--by", "quarter", "--json", db=db_path, check=True).stdout)
    (group,) = data["groups"]
    assert [p["period"] for p in group["periods"]] == ["2025Q1", "2025Q2", "2025Q3", "2025Q4"]
    assert "theil_sen" in group and "mann_kendall" in group
    assert "change per period" in cli("trend", "--task", "synthetic", db=db_path, check=True).stdout
