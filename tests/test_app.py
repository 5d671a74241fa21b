"""The Streamlit app (app.py) page by page with streamlit.testing's AppTest, on the `app_db` fixture store
(the published MLPerf v4.1 results plus quick digits runs, fp32 offline dated in four quarters): every
page renders, and each shows figures checked against the engine, the stored runs or a computation here."""

from __future__ import annotations

import io
import json
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from streamlit.testing.v1 import AppTest

from analysis.load import config_key
from conftest import APP_QUARTERS, REPO
from engine import EXAMPLE_CATALOG, Constraints, load_catalog, recommend
from engine.candidates import load
from infersight.webapp import PAGES
from runner.store import Store

ORDER = ["Recommend", "Explore", "Compare", "Trends", "Runs", "Reports", "Run"]


@pytest.fixture
def open_page(app_db, monkeypatch):
    """open_page(NAME) -> an AppTest of app.py showing page NAME (`?page=NAME`) on the fixture store."""
    monkeypatch.setenv("INFERSIGHT_DB", str(app_db["db"]))

    def run(name: str) -> AppTest:
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
        at.query_params["page"] = name
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.sidebar.radio(key="page").value == name
        return at

    return run


@pytest.fixture
def db(app_db):
    with Store(str(app_db["db"])) as s:
        yield s


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} among {[m.label for m in at.metric]}"
    return found[0]


def table_with(at: AppTest, column: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


def chart_data(at: AppTest) -> list[tuple[dict, list[pd.DataFrame]]]:
    """Every Altair chart on the page: (its Vega-Lite spec, its datasets decoded from Arrow)."""
    out = []
    for chart in at.get("vega_lite_chart"):
        frames = [pa.ipc.open_stream(io.BytesIO(d.data.data)).read_all().to_pandas() for d in chart.proto.datasets]
        out.append((json.loads(chart.proto.spec), frames))
    return out


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


# -- every page ---------------------------------------------------------------------------------

def test_pages_are_registered_in_order():
    names = list(PAGES)
    assert names == [n for n in ORDER if n in names]
    assert names[:5] == ORDER[:5]


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_renders_without_errors(open_page, name):
    at = open_page(name)
    assert at.title[0].value == name
    assert not at.error, errors(at)


# -- Recommend -----------------------------------------------------------------------------------

def fill(at: AppTest, prefix: str, task: str, scenario: str, **values) -> AppTest:
    """Choose task, then scenario (each reruns: the fields below follow them), then set each field whose
    widget key starts with `<prefix>_<name>` (keys carry the task and scenario they belong to)."""
    at.selectbox(key=f"{prefix}_task").set_value(task)
    rerun(at)
    at.selectbox(key=f"{prefix}_scenario_{task}").set_value(scenario)
    rerun(at)
    widgets = [w for kind in ("selectbox", "number_input", "text_input") for w in at.get(kind)]
    for name, value in values.items():
        found = [w for w in widgets if str(w.key).startswith(f"{prefix}_{name}")]
        assert found, f"no field {prefix}_{name}* among {[w.key for w in widgets]}"
        found[0].set_value(value)
    return at


def ask(open_page, **values) -> AppTest:
    at = open_page("Recommend")
    fields = {"task": "resnet50", "scenario": "server", "objective": "cost", "max_p99_ms": 15.0,
              "min_accuracy_ratio": 0.99, **values}
    fill(at, "rec", fields.pop("task"), fields.pop("scenario"), **fields)
    at.button[0].click()
    return rerun(at)


def winner(at: AppTest) -> str:
    found = [m.value for m in at.markdown if m.value.startswith("**Top recommendation")]
    assert found, f"no top recommendation among {[m.value[:40] for m in at.markdown]}"
    return re.sub(r"\\(.)", r"\1", found[0].split(":** ", 1)[1])  # markdown escapes undone


def engine_answer(db, p99: float):
    return recommend(load(db, "resnet50", "server"), Constraints.build(max_p99_ms=p99, min_accuracy_ratio=0.99),
                     "cost", load_catalog(EXAMPLE_CATALOG))


def test_recommend_top_answer_is_the_engines(open_page, db):
    at = ask(open_page)
    rec = engine_answer(db, 15)
    assert winner(at) == rec.winner["candidate"]
    ranked = table_with(at, "rank")
    assert ranked["candidate"].tolist() == rec.ranked["candidate"].tolist()
    published = {r.imported["system_name"]: r.summary["latency_p99_ms"]
                 for r in db.list_runs(task="mlperf-resnet50", scenario="server", source="mlperf", limit=None)}
    assert published[rec.winner["system"]] <= 15  # the winner meets the bound by its published p99
    assert any("Binding constraint" in m.value for m in at.markdown)
    assert any(d.label == "Ranked table (CSV)" for d in at.get("download_button"))
    assert chart_data(at), "no Pareto chart"


def test_recommend_explains_every_exclusion(open_page, db):
    at = ask(open_page, max_p99_ms=10.0)
    published = {r.imported["system_name"]: r.summary["latency_p99_ms"]
                 for r in db.list_runs(task="mlperf-resnet50", scenario="server", source="mlperf", limit=None)}
    expected = {system: p99 - 10 for system, p99 in published.items() if p99 > 10}
    assert len(expected) == 3
    excluded = table_with(at, "failed")
    shown = {c.split(" / ")[0]: s for c, s in zip(excluded["candidate"], excluded["shortfall"])}
    assert shown.keys() == expected.keys()
    assert all(math.isclose(shown[k], expected[k], rel_tol=1e-6) for k in expected)
    assert set(excluded["failed"]) == {"p99 <= 10 ms"}
    assert winner(at) == engine_answer(db, 10).winner["candidate"]


def test_recommend_bad_inputs_say_what_is_wrong(open_page, tmp_path):
    at = ask(open_page, max_p99_ms=0.5)
    assert "No candidate meets all constraints." in errors(at)
    assert any("Nearest miss" in m.value and "relax p99 <= 0.5 ms" in m.value for m in at.markdown)
    bad = tmp_path / "prices.yaml"
    bad.write_text("systems:\n  - system_name: NVIDIA H200 (8x H200-SXM-141GB, TensorRT)\n    price_per_hour_usd: -3\n")
    at = ask(open_page, catalog=str(bad))
    assert f"{bad}:3" in errors(at) and "price_per_hour_usd" in errors(at) and "greater than 0" in errors(at)
    assert not [m for m in at.markdown if m.value.startswith("**Top recommendation")]


# -- Explore -------------------------------------------------------------------------------------

def test_explore_filters_runs_and_overlays_cdfs(open_page, db, app_db):
    at = open_page("Explore")
    at.multiselect(key="explore_task_name").set_value(["digits"])
    rerun(at)
    digits, every = db.list_runs(task="digits", limit=None), db.list_runs(limit=None)
    assert f"{len(digits):,} of {len(every):,} runs" in [c.value for c in at.caption]
    cdf = [frames for spec, frames in chart_data(at) if spec["mark"].get("interpolate") == "step-after"]
    assert cdf and cdf[0][0]["run"].nunique() == 3  # three measured runs picked by default


# -- Compare -------------------------------------------------------------------------------------

def compare(open_page, kind: str, a: str, b: str, force: bool = False) -> AppTest:
    at = open_page("Compare")
    at.radio(key="cmp_kind").set_value(kind)
    rerun(at)
    at.selectbox(key="cmp_task").set_value("digits")
    rerun(at)
    at.selectbox(key="cmp_scenario").set_value("offline")
    rerun(at)
    at.selectbox(key="cmp_a").set_value(a)
    at.selectbox(key="cmp_b").set_value(b)
    at.checkbox(key="cmp_force").set_value(force)
    return rerun(at)


def test_compare_configurations_refuses_different_models_unless_forced(open_page, db, app_db):
    fp32, int8 = (f"config:{config_key(db.get_run(app_db[k][0]))}" for k in ("fp32", "int8"))
    at = compare(open_page, "configurations", fp32, int8)
    assert "model_hash differs" in errors(at) and not at.metric
    at = compare(open_page, "configurations", fp32, int8, force=True)
    assert not at.error, errors(at)
    a = np.log([db.get_run(i).headline_value for i in app_db["fp32"]])
    b = np.log([db.get_run(i).headline_value for i in app_db["int8"]])
    welch = stats.ttest_ind(b, a, equal_var=False)
    ci = welch.confidence_interval(0.95)
    ratio = f"{math.exp(b.mean() - a.mean()):,.4g} [{math.exp(ci.low):,.4g}, {math.exp(ci.high):,.4g}]"
    assert metric(at, "Ratio of geometric means B/A [CI]") == ratio
    delta = math.log1p(0.02)  # TOST at the default 2% margin: two one-sided Welch tests
    tost = max(stats.ttest_ind(b + delta, a, equal_var=False, alternative="greater").pvalue,
               stats.ttest_ind(b - delta, a, equal_var=False, alternative="less").pvalue)
    verdict = ("equivalent" if tost < 0.05 else
               f"different ({'better' if b.mean() > a.mean() else 'worse'})" if welch.pvalue < 0.05 else "inconclusive")
    assert metric(at, "Verdict") == verdict
    assert any("model_hash differs" in w.value for w in at.warning)
    side_a = table_with(at, "ci_low")
    assert side_a["run"].tolist() == app_db["fp32"]
    for row in side_a.itertuples():  # each run's figure with the throughput CI stored with it
        run = db.get_run(row.run)
        stored = run.summary["ci"]["throughput"]["samples_per_second"]
        assert (row.figure, row.ci_low, row.ci_high) == (run.headline_value, stored["low"], stored["high"])


def test_compare_two_runs_uses_batches_and_overlays_their_cdfs(open_page, db, app_db):
    a, b = app_db["fp32"][:2]
    at = compare(open_page, "runs", str(a), str(b))
    assert not at.error, errors(at)
    assert any("fewer than 2 runs on a side" in w.value for w in at.warning)
    assert metric(at, "Verdict") in ("equivalent", "inconclusive", "different (better)", "different (worse)")
    cdf = next(frames[0] for spec, frames in chart_data(at) if spec["mark"].get("interpolate") == "step-after")
    for name, run_id in (("A", a), ("B", b)):
        curve = cdf[cdf["run"] == f"{name}: run {run_id}"]
        assert math.isclose(curve["latency_ms"].max(), db.get_run(run_id).summary["latency_max_ms"], abs_tol=1e-5)
        assert curve["fraction"].max() == 1.0


def test_compare_bad_choices_say_what_is_wrong(open_page, app_db):
    run = str(app_db["fp32"][0])
    at = compare(open_page, "runs", run, run)
    assert "A and B are the same run" in errors(at)
    at = open_page("Compare")
    at.selectbox(key="cmp_task").set_value("mlperf-resnet50")
    rerun(at)
    at.selectbox(key="cmp_scenario").set_value("server")
    at.checkbox(key="cmp_force").set_value(True)
    rerun(at)
    infos = "\n".join(i.value for i in at.info)  # single imported results: why, and what to compare instead
    assert "only single imported MLPerf results" in infos and "configurations with 2+ runs" in infos
    at.selectbox(key="cmp_task").set_value("mlperf-mixtral-8x7b")
    rerun(at)
    assert "a comparison needs two" in errors(at)
    exists = table_with(at, "runs")
    assert (exists["runs"] >= 2).all() and "digits" in set(exists["task"])


# -- Trends --------------------------------------------------------------------------------------

def trends(open_page, **choices) -> AppTest:
    at = open_page("Trends")
    for key, value in {"task": "digits", "scenario": "offline", "source": "measured", **choices}.items():
        at.selectbox(key=f"trend_{key}").set_value(value)
        rerun(at)
    return at


def test_trends_show_the_theil_sen_slope_mann_kendall_and_quarters(open_page, db, app_db):
    at = trends(open_page)
    assert not at.error, errors(at)
    values = np.log([db.get_run(i).headline_value for i in app_db["fp32"]])  # one run a quarter, in order
    slopes = [(values[j] - values[i]) / (j - i) for i in range(4) for j in range(i + 1, 4)]
    assert metric(at, "Theil-Sen / quarter") == f"{math.expm1(np.median(slopes)):+.2%}"
    low, high = metric(at, "95% CI of the change").strip("[]").split(", ")
    assert float(low.rstrip("%")) <= 100 * math.expm1(np.median(slopes)) <= float(high.rstrip("%"))
    s = sum(np.sign(values[j] - values[i]) for i in range(4) for j in range(i + 1, 4))
    z = 0.0 if s == 0 else (s - np.sign(s)) / math.sqrt(4 * 3 * 13 / 18)
    p = 2 * stats.norm.sf(abs(z))  # Mann-Kendall with n = 4: never below 0.05
    assert metric(at, "Mann-Kendall") == f"none (p {p:.3g})"
    quarters = table_with(at, "gmean")
    assert quarters["period"].tolist() == [str(pd.Period(d, "Q")) for d in APP_QUARTERS]
    assert np.allclose(np.log(quarters["gmean"].astype(float)), values)
    assert quarters["ratio"].iloc[1:].astype(float).round(9).tolist() == np.exp(np.diff(values)).round(9).tolist()
    layers = chart_data(at)[0][1]
    assert any(len(f) == 4 and "run_id" in f for f in layers)  # the runs, one point each


def test_trends_of_a_short_history_say_why_there_is_no_slope(open_page):
    at = trends(open_page)
    int8 = next(i for i, name in enumerate(at.selectbox(key="trend_group").options) if "/ int8 /" in name)
    at.selectbox(key="trend_group").set_value(int8)
    rerun(at)
    assert "1 period(s) with runs: slope and trend tests need 3" in [i.value for i in at.info]
    assert metric(at, "Runs / periods") == "2 / 1"


def test_trends_without_data_say_what_exists(open_page):
    at = trends(open_page, source="mlperf")
    assert "No complete imported from MLPerf runs of digits offline" in errors(at)
    exists = table_with(at, "provenance")
    assert {"digits", "mlperf-resnet50"} <= set(exists["task"])


def test_trend_chart_marks_a_step_change_between_the_runs_around_it():
    from analysis.services import TrendSeries
    from analysis.trend import trend
    from reports._trend_parts import series_chart

    rng = np.random.default_rng(1)
    values = np.r_[rng.normal(100, 2, 8), rng.normal(150, 2, 8)]  # a 1.5x step after run 8
    when = pd.date_range("2024-01-15", periods=16, freq="20D", tz="UTC")
    frame = pd.DataFrame({"run_id": np.arange(1, 17), "started_at": when, "value": values, "task": "t",
                          "model_variant": "fp32", "scenario": "offline", "system": "s", "backend": "b",
                          "metric": "samples_per_second"})
    group = TrendSeries.model_validate(trend(frame, "quarter")[0])
    spec = series_chart(group).to_dict()
    rules = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "rule")
    (cp,) = [c for c in spec["datasets"][rules["data"]["name"]] if c["confirmed"]]
    assert pd.Timestamp(cp["when"]) == (when[7] + (when[8] - when[7]) / 2).tz_convert(None)
    step = math.exp(np.log(values[8:]).mean() - np.log(values[:8]).mean())
    assert cp["label"].startswith(f"x{step:.3g} ")


# -- Runs ----------------------------------------------------------------------------------------

def test_runs_page_shows_the_chosen_runs_cards(open_page, db, app_db):
    at = open_page("Runs")
    run_id = app_db["single_stream"]
    at.selectbox(key="run_id").set_value(run_id)
    rerun(at)
    run = db.get_run(run_id)
    assert metric(at, "validity") == run.validity
    assert run.headline_metric in [m.label for m in at.metric]
    labels = [e.label for e in at.expander]
    for kind in ("task", "model", "backend", "system"):
        assert f"{kind} card {run.card_hashes[kind][:12]}" in labels


def test_runs_page_shows_an_imported_runs_provenance(open_page, db):
    imported = db.list_runs(task="mlperf-resnet50", scenario="server", source="mlperf", limit=1)[0]
    at = open_page("Runs")
    at.selectbox(key="run_id").set_value(imported.id)
    rerun(at)
    cells = {str(v) for d in at.dataframe if "value" in d.value.columns for v in d.value["value"]}
    assert imported.imported["source_path"] in cells


# -- Reports -------------------------------------------------------------------------------------

def test_reports_page_writes_the_decision_report_with_the_engines_winner(open_page, db):
    at = open_page("Reports")
    at.radio(key="rep_kind").set_value("decision")
    rerun(at)
    fill(at, "rep", "resnet50", "server", objective="cost", max_p99_ms=15.0, min_accuracy_ratio=0.99)
    at.button[0].click()
    rerun(at)
    assert not at.error, errors(at)
    kind, name, html = at.session_state["rep_html"]
    assert (kind, name) == ("decision", "decision-resnet50-server.html")
    assert name in at.success[0].value
    assert engine_answer(db, 15).winner["candidate"] in html
    assert any(d.label == "Download the HTML report" for d in at.get("download_button"))
