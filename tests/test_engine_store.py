"""The candidates loader on a real store: the published MLPerf v4.1 results plus runs measured here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from engine import EXAMPLE_CATALOG, Constraints, load_catalog, recommend
from engine.candidates import aggregate, available, load
from engine.cost import HOURS_PER_YEAR
from runner.errors import EngineError
from runner.importers import import_tree
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store

DATA = Path(__file__).resolve().parents[2] / "shared/data/mlperf/v4.1"
assert (DATA / "summary_results.json").is_file(), f"MLPerf v4.1 results not found at {DATA}"
RESNET50_REFERENCE = 76.46  # MLPerf's fp32 reference top-1 accuracy (%) for ResNet-50 v1.5


@pytest.fixture(scope="module")
def filled(tmp_path_factory, digits_models):
    """A store holding the v4.1 results and four quick digits offline runs: two replicas pinned to CPU 0,
    one pinned to CPUs 0-1, one int8 on CPU 0."""
    store = Store(str(tmp_path_factory.mktemp("engine") / "engine.db"))
    import_tree(store, DATA)
    measured = {}
    for name, cpus, variant in (("one_a", "0", "fp32"), ("one_b", "0", "fp32"), ("two", "0-1", "fp32"),
                                ("int8", "0", "int8")):
        request = RunRequest("digits", scenario="offline", model_variant=variant, quick=True, cpus=cpus)
        measured[name] = execute_run(prepare_run(request), store)
    yield store, measured
    store.close()


def expected_costs(store: Store) -> dict[str, float]:
    """USD per million inferences of each resnet50 Server result, computed here from the example catalogue
    file and the stored headlines: amortised purchase / utilisation + power x tariff, over QPS x 3600."""
    raw = yaml.safe_load(EXAMPLE_CATALOG.read_text())
    defaults = raw["defaults"]
    entries = {e["system_name"]: e for e in raw["systems"] if "system_id" not in e}
    out = {}
    for run in store.list_runs(task="mlperf-resnet50", scenario="server", source="mlperf", limit=None):
        imported = run.imported
        entry = entries[imported["system_name"]]
        power = (imported.get("power") or {}).get("avg_power_w") or entry["tdp_w"]
        lifetime = entry.get("lifetime_years", defaults["lifetime_years"])
        hourly = entry["purchase_price_usd"] / (lifetime * HOURS_PER_YEAR) / defaults["utilisation"]
        hourly += power / 1000 * defaults["tariff_usd_per_kwh"]
        out[imported["system_name"]] = hourly / (run.headline_value * 3600) * 1e6
    return out


def test_best_system_for_resnet50_server_under_p99_15ms_by_cost(filled):
    store, _ = filled
    frame = load(store, "resnet50", "server")
    rec = recommend(frame, Constraints.build(max_p99_ms=15, min_accuracy_ratio=0.99), "cost",
                    load_catalog(EXAMPLE_CATALOG))
    costs = expected_costs(store)
    assert len(costs) == 6 and len(frame) == 6
    assert rec.ranked["system"].tolist() == sorted(costs, key=costs.get)  # every v4.1 resnet50 server meets both
    assert rec.ranked["cost_per_million_usd"].tolist() == pytest.approx(sorted(costs.values()), rel=1e-9)
    assert rec.explanation.winner == rec.ranked["candidate"].iloc[0]
    assert rec.explanation.binding is not None and rec.explanation.lines[0].startswith("Winner: ")
    assert any("EXAMPLES" in line for line in rec.assumptions)
    for row in rec.ranked.to_dict("records"):  # every figure traces back to its source run
        run = store.get_run(int(row["run_ids"]))
        imported = store.get_imported(run.id)
        assert imported["system_name"] == row["system"] and imported["scenario"] == "server"
        assert row["samples_per_s"] == run.headline_value and run.headline_units == "Queries/s"
        assert row["p99_ms"] == pytest.approx(run.summary["percentiles_ns"]["latency"]["99"] / 1e6)
        assert row["accuracy_ratio"] == pytest.approx(run.accuracy_value / RESNET50_REFERENCE)
        assert row["provenance"] == "imported" and row["source"] == "MLPerf Inference v4.1 closed"
        assert row["submitter"] == imported["submitter"]


def test_the_answer_key_figures_reach_the_candidates(filled):
    store, _ = filled
    key = {row["Location"]: row for row in json.loads((DATA / "summary_results.json").read_text())}
    frame = load(store, "resnet50", "offline")
    for row in frame.to_dict("records"):
        run = store.get_run(int(row["run_ids"]))
        location = store.get_imported(run.id)["source_path"]
        published = key[location]["Performance_Result"]
        assert row["samples_per_s"] == pytest.approx(published, rel=1e-5)


def test_power_measured_by_mlperf_is_used_before_the_catalogue(filled):
    store, _ = filled
    rec = recommend(load(store, "resnet50", "server"), Constraints(), "throughput_per_watt",
                    load_catalog(EXAMPLE_CATALOG))
    dell = rec.ranked[rec.ranked["system"] == "Dell PowerEdge R760xa (6x speedAI240 Slim)"].iloc[0]
    run = store.get_run(int(dell["run_ids"]))
    power = store.get_imported(run.id)["power"]["avg_power_w"]
    assert dell["power_w"] == pytest.approx(power) and dell["power_source"] == "measured"
    assert dell["throughput_per_watt"] == pytest.approx(run.headline_value / power)


def test_replicas_are_aggregated_and_pinned_cores_are_distinct_systems(filled):
    store, measured = filled
    frame = load(store, "digits", "offline")
    one = frame[(frame["model_variant"] == "fp32") & frame["system"].str.endswith("[1 CPU]")]
    two = frame[frame["system"].str.endswith("[2 CPUs]")]
    assert len(one) == 1 and len(two) == 1 and set(frame["provenance"]) == {"measured"}
    row = one.iloc[0]
    ids = sorted((measured["one_a"], measured["one_b"]))
    assert row["run_ids"] == f"{ids[0]},{ids[1]}" and row["n_runs"] == 2 and row["ci_source"] == "between runs"
    values = np.array([store.get_run(i).summary["samples_per_second"] for i in ids])
    lo, hi = stats.t.interval(0.95, df=1, loc=values.mean(), scale=stats.sem(values))
    assert row["samples_per_s"] == pytest.approx(np.median(values))
    assert (row["samples_per_s_lo"], row["samples_per_s_hi"]) == pytest.approx((max(lo, 0.0), hi))
    assert row["accuracy_ratio"] == pytest.approx(1.0) and not row["compliant"] and row["quick"]
    # one run: its within-run CI (analysis.ci, stored in its summary when it finished)
    ci = store.get_run(measured["two"]).summary["ci"]["throughput"]["samples_per_second"]
    assert two.iloc[0]["run_ids"] == str(measured["two"]) and two.iloc[0]["ci_source"] == "within run"
    assert (two.iloc[0]["samples_per_s_lo"], two.iloc[0]["samples_per_s_hi"]) == (ci["low"], ci["high"])
    int8 = frame[frame["model_variant"] == "int8"].iloc[0]
    fp32_reference = store.get_card("model", store.get_run(measured["int8"]).model_hash)["reference_quality"]
    assert int8["accuracy_ratio"] == pytest.approx(store.get_run(measured["int8"]).accuracy_value
                                                   / fp32_reference["fp32_reference"])


def test_local_systems_are_priced_per_core_count(filled, tmp_path):
    store, _ = filled
    frame = load(store, "digits", "offline")
    names = sorted(set(frame["system"]))
    assert len(names) == 2 and names[0].endswith(" [1 CPU]") and names[1].endswith(" [2 CPUs]")
    path = tmp_path / "prices.csv"
    path.write_text("system_name,price_per_hour_usd\n" + "".join(f'"{n}",{0.025 * (i + 1)}\n'
                                                                 for i, n in enumerate(names)))
    rec = recommend(frame, Constraints.build(min_accuracy_ratio=0.98), "cost", load_catalog(path))
    assert len(rec.ranked) == 3
    for row in rec.ranked.to_dict("records"):
        hourly = 0.025 if row["system"].endswith("[1 CPU]") else 0.05
        assert row["cost_per_million_usd"] == pytest.approx(hourly / (row["samples_per_s"] * 3600) * 1e6)


def test_per_run_cis_plug_in(filled):
    store, measured = filled
    frame = load(store, "digits", "offline", cis=lambda run: {"p99_ms": (1.0, 2.0), "nonsense": (0, 1)})
    two = frame[frame["run_ids"] == str(measured["two"])].iloc[0]
    assert (two["p99_ms_lo"], two["p99_ms_hi"]) == (1.0, 2.0) and two["ci_source"] == "within run"
    assert math.isclose(two["samples_per_s_lo"], two["samples_per_s"])  # this cis() gives none for throughput


def test_what_the_store_holds_and_bad_requests(filled):
    store, _ = filled
    held = available(store)
    assert {"resnet50", "bert", "llama2-70b", "digits"} <= set(held["task"])
    assert set(held.loc[held["task"] == "resnet50", "scenario"]) == {"offline", "server", "single_stream",
                                                                       "multi_stream"}
    with pytest.raises(EngineError) as caught:
        load(store, "resnet", "server")
    assert "did you mean 'resnet50'?" in str(caught.value) and "resnet50 (multi_stream, offline, server" in str(
        caught.value)
    with pytest.raises(EngineError, match="no complete runs of task 'digits' under scenario 'server'"):
        load(store, "digits", "server")
    with pytest.raises(EngineError, match="unknown scenario 'serverless'"):
        load(store, "resnet50", "serverless")
    assert len(load(store, "mlperf-resnet50", "server")) == 6  # the importer's task name works too


def test_aggregating_replicas_by_hand():
    """Two runs of one configuration: median, t interval over the runs, clipped at 0 (figures are >= 0)."""
    runs = pd.DataFrame([{"config_key": "k", "run_id": rid, "system": "s", "system_id": "s", "backend": "b",
                          "model_variant": "fp32", "settings": "", "provenance": "measured", "compliant": True,
                          "quick": False, "samples_per_s": thr, "p99_ms": p99}
                         for rid, thr, p99 in ((7, 100.0, 10.0), (3, 200.0, 10.4))])
    row = aggregate(runs).iloc[0]
    assert (row["run_ids"], row["n_runs"], row["ci_source"]) == ("3,7", 2, "between runs")
    lo, hi = stats.t.interval(0.95, df=1, loc=150.0, scale=stats.sem([100.0, 200.0]))
    assert lo < 0 and (row["samples_per_s"], row["samples_per_s_lo"], row["samples_per_s_hi"]) == \
        pytest.approx((150.0, 0.0, hi))
    lo, hi = stats.t.interval(0.95, df=1, loc=10.2, scale=stats.sem([10.0, 10.4]))
    assert (row["p99_ms_lo"], row["p99_ms_hi"]) == pytest.approx((lo, hi))
    assert np.isnan(row["tokens_per_s"]) and row["candidate"] == "s / b / fp32"
