"""The service layer (analysis.services, engine.services, reports.services): one function per workflow, a
validated frozen request in, a frozen record out; figures checked against a computation here or the
function underneath, bad requests refused with the field named."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats

from analysis import services
from analysis.services import AnalyseRequest, CompareRequest, ReproRequest, TrendRequest
from engine import EXAMPLE_CATALOG, Constraints, load_catalog
from engine import recommend as rank
from engine.candidates import load
from engine.services import RecommendRequest, recommend
from reports._trend_parts import series_chart
from reports.services import (DecisionReportRequest, DescribeRunRequest, RunReportRequest, TrendReportRequest,
                             describe_run, render_report)
from runner.errors import AnalysisError, EngineError
from runner.importers import import_tree
from runner.run import RunRequest, execute_run, prepare_run
from test_analysis_store import QUICK_NULL, add_run, latencies

MLPERF = Path(__file__).resolve().parents[2] / "shared/data/mlperf/v4.1"


def test_analyse_gives_a_frozen_record_of_the_runs_intervals(store):
    run_id = add_run(store, latencies())
    record = services.analyse(AnalyseRequest.parse(run=str(run_id), confidence=0.9), store)
    p90 = record.ci["latency_ms"]["p90"]
    assert record.replicas == (run_id,) and record.ci["confidence"] == 0.9
    assert record.headline_ci == p90 and p90["low"] <= p90["estimate"] <= p90["high"]
    assert p90["estimate"] == pytest.approx(np.percentile(latencies() / 1e6, 90), rel=0.01)
    json.dumps(record.to_dict())
    with pytest.raises(ValidationError):
        record.config_key = "other"


def two_configurations(store) -> tuple[list[int], list[int]]:
    a = [add_run(store, latencies(1.0, seed=s), settings={"threads": 1}) for s in range(3)]
    b = [add_run(store, latencies(1.3, seed=10 + s), settings={"threads": 2}) for s in range(3)]
    return a, b


def test_compare_gives_geometric_means_and_the_tests_in_words(store):
    a, b = two_configurations(store)
    refs = tuple(f"config:{services.analyse(AnalyseRequest(run=str(ids[0])), store).config_key}" for ids in (a, b))
    result = services.compare(CompareRequest.parse(refs=refs), store)
    (other,) = result.comparisons
    assert result.unit == "runs" and other.runs == tuple(b) and result.baseline.runs == tuple(a)
    for side in (result.baseline, other):
        assert side.geometric_mean == pytest.approx(math.exp(np.mean(np.log(side.values))), rel=1e-12)
        assert [f.figure for f in side.run_figures] == pytest.approx(side.values)  # run-level: one figure a run
        assert all(f.ci_low < f.figure < f.ci_high for f in side.run_figures)  # within-run CIs from the logs
    welch = stats.ttest_ind(np.log(other.values), np.log(result.baseline.values), equal_var=False)
    assert other.welch_p == pytest.approx(welch.pvalue, rel=1e-9)
    assert other.significance.startswith("significant: Welch p = ") and other.welch_p < 0.05
    assert other.verdict_text == "different (worse)" and other.outcome == "worse"  # p90 latency: lower is better
    assert other.equivalence.startswith("not shown equivalent within +-2.0%: TOST p = ")


def test_bad_requests_name_the_field(store):
    with pytest.raises(AnalysisError, match=r"CompareRequest: refs \['1'\]: .*at least 2"):
        CompareRequest.parse(refs=["1"])
    with pytest.raises(AnalysisError, match=r"margin 2: .*less than 1"):
        CompareRequest.parse(refs=["1", "2"], margin=2)
    with pytest.raises(AnalysisError, match=r"colour 'red': unknown field"):
        TrendRequest.parse(colour="red")
    with pytest.raises(AnalysisError, match=r"either run .* or runs"):
        ReproRequest.parse(run="1", runs=[1, 2])
    with pytest.raises(EngineError, match=r"bounds: .*unknown bound\(s\) max_p98_ms"):
        RecommendRequest.parse(task="digits", scenario="offline", bounds={"max_p98_ms": 3})
    with pytest.raises(EngineError, match=r"target_qps -1: .*greater than 0"):
        RecommendRequest.parse(task="digits", scenario="offline", target_qps=-1)


def test_reproducibility_of_a_configuration_or_of_given_runs_is_one_answer(store):
    a, _ = two_configurations(store)
    by_config = services.reproducibility(ReproRequest.parse(run=str(a[1]), tolerance=0.05), store)
    by_runs = services.reproducibility(ReproRequest.parse(runs=a, tolerance=0.05), store)
    assert by_config == by_runs and by_config.run_ids == tuple(a)
    figures = [services.analyse(AnalyseRequest(run=str(i)), store).run["headline_value"] for i in a]
    assert by_config.to_dict()["run_figures"] == pytest.approx(figures)


def test_trend_series_carry_their_runs_and_theil_sen_line(store):
    days = ["2026-01-15", "2026-04-15", "2026-07-15", "2026-10-15"]
    ids = [add_run(store, latencies(1 + 0.1 * i, seed=i), started=day) for i, day in enumerate(days)]
    result = services.trend(TrendRequest.parse(by="quarter", metric="latency_p50_ms"), store)
    (series,) = result.groups
    assert result.runs == 4 and [p["run_id"] for p in series.points] == ids
    assert series.group["metric"] == "latency_p50_ms"
    ts = series.theil_sen
    first, last = series.fit[0], series.fit[-1]
    middle = pd.Timestamp("2026-02-15")  # of 2026Q1
    assert abs(pd.Timestamp(first["when"]) - middle) < pd.Timedelta(1, "ms")
    assert first["fit"] == pytest.approx(math.exp(ts["intercept"]), rel=1e-9)
    assert last["fit"] == pytest.approx(math.exp(ts["intercept"] + 3 * ts["slope"]), rel=1e-9)
    assert all(p["low"] <= p["fit"] <= p["high"] for p in series.fit)
    marks = [layer["mark"] for layer in series_chart(series).to_dict()["layer"]]
    assert [m["type"] if isinstance(m, dict) else m for m in marks][:4] == ["point", "line", "area", "line"]


@pytest.fixture(scope="module")
def mlperf_store(tmp_path_factory):
    from runner.store import Store

    store = Store(str(tmp_path_factory.mktemp("services") / "mlperf.db"))
    import_tree(store, MLPERF)
    yield store
    store.close()


def test_recommend_reads_the_candidates_and_prices_from_the_example_catalogue_by_default(mlperf_store):
    request = RecommendRequest.parse(task="resnet50", scenario="server", bounds={"max_p99_ms": 15},
                                     where=["accuracy_ratio >= 99 %"], target_qps=20000)
    result = recommend(request, mlperf_store)
    frame = load(mlperf_store, "resnet50", "server")
    direct = rank(frame, Constraints.build(["accuracy_ratio >= 99 %"], max_p99_ms=15), "cost",
                  load_catalog(EXAMPLE_CATALOG), target_load=20000)
    assert result.catalog.is_example and result.candidates == len(frame) and result.measured == 0
    assert result.recommendation.ranked["candidate"].tolist() == direct.ranked["candidate"].tolist()
    assert result.recommendation.capacity == direct.capacity
    answer = result.to_dict(limit=3)
    assert answer["catalog_is_example"] and answer["winner"]["candidate"] == direct.winner["candidate"]
    with pytest.raises(EngineError, match="no such catalogue file"):
        recommend(RecommendRequest.parse(task="resnet50", scenario="server", catalog="nowhere.yaml"), mlperf_store)


def test_decision_report_is_the_recommendations(mlperf_store):
    question = RecommendRequest.parse(task="resnet50", scenario="server", bounds={"max_p99_ms": 15})
    report = render_report(DecisionReportRequest.parse(question=question, note="PO 4711"), mlperf_store)
    winner = recommend(question, mlperf_store).recommendation.winner["candidate"]
    assert report.file_name == "decision-resnet50-server.html" and report.about["winner"] == winner
    assert "PO 4711" in report.html and winner in report.html
    with pytest.raises(AnalysisError, match="write it as YEARQn"):
        render_report(TrendReportRequest.parse(quarter="Q3 of 2026"), mlperf_store)


def test_describe_a_run_and_render_its_report(store, digits_models):
    run_id = execute_run(prepare_run(RunRequest("digits", "null", "single_stream", quick=True,
                                                scenario_settings=QUICK_NULL)), store)
    view = describe_run(DescribeRunRequest.parse(run=str(run_id)), store)
    assert view.run_id == run_id and view.title in render_report(RunReportRequest(run=str(run_id)), store).html
    assert view.charts and all(c["spec"]["$schema"].startswith("https://vega.github.io") for c in view.charts)
    assert {card["kind"] for card in view.context["cards"]} == {"task", "model", "backend", "system"}
