"""The comparison, decision and trend reports, the reproducible badge, the report commands and the
app's Reports page: content against independently computed figures, escaping, and a real browser.

The fixture store holds one real quick digits run (on a system named with a script tag, labelled
with an image tag) and synthetic runs with its cards: three configurations of three replicas each
(per-query records drawn from one lognormal sample, scaled per run, so every figure is known) and
a history of 112 runs over seven quarters on two more systems, with a known step and a known trend.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.trend import periods_of
from sqlalchemy import update

from _browser import A4_CONTENT_PX, chart_specs, open_offline
from conftest import cli
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import RunRecord, Store
from runner.store.schema import runs as runs_table

EVIL = "<script>alert(1)</script>"
EVIL_IMG = '"><img src=x onerror=alert(2)>'
SPEC_BODY = re.compile(r'<script type="application/json" class="chart-spec"[^>]*>(.*?)</script>', re.S)
MLPERF = Path(__file__).resolve().parents[2] / "shared/data/mlperf/v4.1"
QUARTERS = ["2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1", "2026Q2", "2026Q3"]
SYSTEMS = {"steady": f"Rack {EVIL_IMG}", "other": "Plain box"}
BASE_LATENCY = np.random.default_rng(11).lognormal(np.log(0.2), 0.25, 1500)  # ms, one sample for every run
# intra_op_threads and run-to-run factors of the synthetic configurations: against A, B is 20% faster,
# C the same within 0.1%, D spread by -3%..+4% (not reproducible, and inconclusive against A)
CONFIGS = {"A": (1, [1.00, 1.005, 0.995]), "B": (3, [0.80, 0.81, 0.79]), "C": (4, [1.001, 0.999, 1.000]),
           "D": (5, [1.00, 1.04, 0.97])}


def _digest(card: dict) -> str:
    return hashlib.sha256(json.dumps(card, sort_keys=True, default=str).encode()).hexdigest()


def clone_cards(store: Store, run: RunRecord, system_name: str | None = None, backend: str | None = None) -> dict:
    """The four card hashes of `run`, with the system renamed and/or the backend card changed (new hashes)."""
    hashes = {}
    for kind in ("task", "model", "backend", "system"):
        card = store.get_card(kind, run.card_hashes[kind])
        if kind == "system" and system_name:
            card = {**card, "system_name": system_name}
        if kind == "backend" and backend:
            card = {**card, "backend": backend}
        hashes[kind] = store.put_card(kind, card, _digest(card), kind)
    return hashes


def synthetic_run(store: Store, base: RunRecord, hashes: dict, *, started: str, headline: float,
                  latency_ms: np.ndarray | None = None, threads: int | None = None, backend: str | None = None,
                  label: str | None = None) -> int:
    """A complete, VALID run with `base`'s settings (intra_op_threads changed to make another configuration),
    headline `headline` ms (p90), started at `started`; with per-query records when latencies are given
    (p99 and throughput from them), else p99 = 1.5 x the headline and 1000 / headline samples/s."""
    settings = json.loads(json.dumps(base.settings))
    if threads is not None:
        settings["backend"]["intra_op_threads"] = threads
    run_id = store.create_run(task_name="digits", task_version=base.task_version, model_variant="fp32",
                              backend_name=backend or "onnxruntime", scenario="single_stream", card_hashes=hashes,
                              settings=settings, quick=True, compliant=False, label=label)
    summary = {k: v for k, v in base.summary.items() if k != "ci"}
    if latency_ms is not None:
        latency = np.round(latency_ms * 1e6).astype(np.int64)
        scheduled = np.cumsum(latency) - latency
        store.append_perf_samples(run_id, {"sample_index": np.arange(len(latency)) % 360,
                                           "query_index": np.arange(len(latency)), "scheduled_ns": scheduled,
                                           "issued_ns": scheduled + 1000, "completed_ns": scheduled + latency})
        summary.update(latency_p99_ms=float(np.quantile(latency_ms, 0.99)),
                       samples_per_second=len(latency) / (latency.sum() / 1e9))
    else:  # known figures, not the real run's (which vary with the machine's load)
        summary.update(latency_p99_ms=headline * 1.5, samples_per_second=1000 / headline)
    summary.update(latency_p90_ms=headline)
    store.finish_run(run_id, status="complete", validity="VALID", headline_metric="latency_p90_ms",
                     headline_value=headline, headline_units="ms", summary=summary,
                     accuracy_metric=base.accuracy_metric, accuracy_value=base.accuracy_value,
                     accuracy_target=base.accuracy_target, accuracy_passed=True)
    with store.engine.begin() as conn:
        conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(started_at=pd.Timestamp(started)))
    return run_id


def history_value(series: str, quarter: int, k: int) -> float:
    """The headline (ms) of run k of a quarter of a history series: 'steady' steps down 20% from
    2026Q2 (a change point), 'other' grows 5% a quarter; +-1% noise that is known, not drawn."""
    noise = 1 + 0.01 * (-1.5 + k)
    if series == "steady":
        return (1.0 if quarter < 5 else 0.8) * noise
    return 2.0 * 1.05 ** quarter * noise


@pytest.fixture(scope="module")
def more_db(tmp_path_factory, digits_models) -> dict:
    """The fixture store (see the module doc) and the ids in it."""
    db = tmp_path_factory.mktemp("reports_more") / "more.db"
    with Store(str(db)) as store:
        real = execute_run(prepare_run(RunRequest("digits", scenario="single_stream", quick=True, label=EVIL_IMG,
                                                  system_extra={"system_name": EVIL})), store)
        base = store.get_run(real)
        with store.engine.begin() as conn:  # a fixed date, so no run falls in a quarter by the calendar
            conn.execute(update(runs_table).where(runs_table.c.id == real)
                         .values(started_at=pd.Timestamp("2026-12-01T00:00Z")))
        p90 = float(np.quantile(BASE_LATENCY, 0.9))
        configs = {}
        for name, (threads, factors) in CONFIGS.items():
            configs[name] = [synthetic_run(store, base, clone_cards(store, base), started=f"2026-08-0{i + 1}T12:00Z",
                                           headline=p90 * f, latency_ms=BASE_LATENCY * f, threads=threads,
                                           label=f"{name}{i} {EVIL}") for i, f in enumerate(factors)]
        history = {}
        for series, system in SYSTEMS.items():
            for backend in ("onnxruntime", "openvino"):
                hashes = clone_cards(store, base, system, backend)
                for q, quarter in enumerate(QUARTERS):
                    start = pd.Period(quarter, "Q").start_time
                    history[(series, backend, quarter)] = [
                        synthetic_run(store, base, hashes, started=str(start + pd.Timedelta(days=7 + 14 * k)) + "Z",
                                      headline=history_value(series, q, k) * (1 if backend == "onnxruntime" else 1.5),
                                      backend=backend) for k in range(4)]
    return {"db": db, "real": real, "configs": configs, "history": history, "p90": p90}


@pytest.fixture(scope="module")
def more_store(more_db):
    with Store(str(more_db["db"])) as store:
        yield store


def config_ref(store: Store, run_id: int) -> str:
    from analysis.load import config_key

    return f"config:{config_key(store.get_run(run_id))}"


def headlines(store: Store, ids: list[int]) -> np.ndarray:
    return np.array([store.get_run(i).headline_value for i in ids])


def welch_ratio(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """gmean(b)/gmean(a) and its 95% Welch interval on logs, straight from scipy."""
    res = stats.ttest_ind(np.log(b), np.log(a), equal_var=False)
    ci = res.confidence_interval(0.95)
    return math.exp(np.log(b).mean() - np.log(a).mean()), math.exp(ci.low), math.exp(ci.high)


def assert_escaped(html: str, *texts: str) -> None:
    """Strings from cards, labels and notes reach the page escaped, never as markup; chart data escapes `<`."""
    from markupsafe import escape

    markup = re.sub(r"(<script\b[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S | re.I)
    assert "<img" not in markup
    for text in texts:
        assert text not in markup and str(escape(text)) in markup, text
    assert all("<" not in body for body in SPEC_BODY.findall(html))
    opening = re.findall(r"<script\b[^>]*>", html, re.I)  # the Vega bundle, the specs, the embedding code
    assert len(opening) == 2 + len(chart_specs(html)), opening


def assert_opens_offline(html: str, folder: Path, name: str, charts: int) -> None:
    """Chromium, network blocked: every chart drawn with marks and as narrow as an A4 page, no request out,
    no console error, nothing injected ran, a screenshot saved."""
    seen = open_offline(html, folder, name)
    assert seen.drawn == f"{charts}/{charts}", seen.drawn
    assert len(seen.charts) == charts and all(svgs >= 1 and marks > 0 for _, svgs, marks, _ in seen.charts), seen.charts
    assert all(width <= A4_CONTENT_PX for *_, width in seen.charts), seen.charts  # they print on A4
    assert seen.outside == [] and seen.problems == [] and seen.injected == []
    assert seen.screenshot.stat().st_size > 20_000


# -- comparison ---------------------------------------------------------------------------------

def test_compare_report_matches_welchs_interval_and_the_verdicts(more_db, more_store, tmp_path):
    from reports.compare import compare_report_context, render_compare_report

    configs = more_db["configs"]
    refs = [config_ref(more_store, configs[name][0]) for name in "ABCD"]
    context, blocks = compare_report_context(more_store, refs, note=EVIL)
    a = headlines(more_store, configs["A"])
    rows = {row["side"]["letter"]: row for row in context["rows"]}
    for name in "BCD":
        ratio, low, high = welch_ratio(a, headlines(more_store, configs[name]))
        gm = rows[name]["gm"]
        assert (gm["estimate"], gm["low"], gm["high"]) == pytest.approx((ratio, low, high), rel=1e-9)
    assert rows["B"]["gm"]["estimate"] == pytest.approx(0.8 / 1.0, rel=1e-3)
    assert {k: r["verdict"] for k, r in rows.items()} == {"B": "better", "C": "equivalent", "D": "inconclusive"}
    assert [s["run_ids"] for s in context["sides"]] == [configs[n] for n in "ABCD"]
    html = render_compare_report(more_store, refs, note=EVIL)
    assert "B is 20.0% below A" in html and "equivalent within +-2.0%" in html
    assert_escaped(html, EVIL)
    specs = chart_specs(html)
    assert set(specs) == {"figures", "ratios", "latency_cdfs"} == {b.key for b in blocks}
    cdf = next(rows for rows in specs["latency_cdfs"]["datasets"].values() if rows and "fraction" in rows[0])
    for letter, (threads, factors) in zip("ABCD", CONFIGS.values()):
        pooled = np.concatenate([np.round(BASE_LATENCY * f * 1e6) / 1e6 for f in factors])
        mine = [r for r in cdf if r["run"].startswith(f"{letter}:")]
        assert max(r["latency_ms"] for r in mine) == pytest.approx(pooled.max(), abs=1e-6)
        assert max(r["fraction"] for r in mine) == 1.0
    assert_opens_offline(html, tmp_path, "compare", 3)


def test_compare_chart_specs(more_db, more_store):
    from reports.compare import compare_report_context, ratio_chart

    configs = more_db["configs"]
    context, _ = compare_report_context(more_store, [config_ref(more_store, configs[n][0]) for n in "AB"],
                                        margin=0.05)
    spec = ratio_chart(context["rows"], 0.05).to_dict()
    band, one, bars, dots = spec["layer"]
    assert band["mark"]["type"] == "rect" and one["mark"]["type"] == "rule"
    data = {name: rows for name, rows in spec["datasets"].items()}
    assert {"lo": pytest.approx(1 / 1.05), "hi": pytest.approx(1.05)} in [r for rows in data.values() for r in rows]
    assert dots["encoding"]["x"]["field"] == "ratio" and bars["encoding"]["x2"]["field"] == "high"
    assert dots["encoding"]["color"]["scale"]["domain"] == ["equivalent", "better", "worse", "inconclusive"]


def test_compare_report_of_one_run_a_side_uses_batches_and_warns(more_db, more_store):
    from reports.compare import render_compare_report

    configs = more_db["configs"]
    html = render_compare_report(more_store, [str(configs["A"][0]), str(configs["B"][0])])
    assert "batches as the unit of replication" in html and "within-run noise only" in html


# -- decision -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlperf_store(tmp_path_factory):
    from runner.importers import import_tree

    with Store(str(tmp_path_factory.mktemp("decision") / "mlperf.db")) as store:
        import_tree(store, MLPERF)
        yield store


def published_costs(store: Store) -> dict[str, tuple[float, float, str]]:
    """(USD per million inferences, published QPS, submitter) of each resnet50 Server result, from the
    example catalogue file and the published QPS and power: amortised purchase / utilisation + energy."""
    import yaml

    from engine import EXAMPLE_CATALOG

    raw = yaml.safe_load(EXAMPLE_CATALOG.read_text())
    defaults, entries = raw["defaults"], {e["system_name"]: e for e in raw["systems"] if "system_id" not in e}
    out = {}
    for run in store.list_runs(task="mlperf-resnet50", scenario="server", source="mlperf", limit=None):
        imported, entry = run.imported, entries[run.imported["system_name"]]
        power = (imported.get("power") or {}).get("avg_power_w") or entry["tdp_w"]
        hourly = entry["purchase_price_usd"] / (entry.get("lifetime_years", defaults["lifetime_years"]) * 365.25 * 24)
        hourly = hourly / defaults["utilisation"] + power / 1000 * defaults["tariff_usd_per_kwh"]
        out[imported["system_name"]] = (hourly / (run.headline_value * 3600) * 1e6, run.headline_value,
                                        imported["submitter"])
    return out


def test_decision_report_of_published_results_ranks_by_cost_with_provenance(mlperf_store, tmp_path):
    from engine import EXAMPLE_CATALOG, Constraints, load_catalog, recommend
    from engine.candidates import load
    from reports.decision import decision_report_context, render_decision_report

    catalog = load_catalog(EXAMPLE_CATALOG)
    frame = load(mlperf_store, "resnet50", "server")
    constraints = Constraints.build(max_p99_ms=10, min_accuracy_ratio=0.99)
    rec = recommend(frame, constraints, "cost", catalog, what_if=True)  # cost per unit: the published order
    costs = published_costs(mlperf_store)
    context, blocks = decision_report_context(rec, task="resnet50", scenario="server", candidates=len(frame),
                                              catalog=catalog, note="PO 4711")
    ranked_systems = [r["candidate"].split(" / ")[0] for r in context["ranked"]]
    assert ranked_systems == sorted(ranked_systems, key=lambda s: costs[s][0])
    p99 = {r["system"]: r["p99_ms"] for r in frame.to_dict("records")}
    assert sorted(ranked_systems) == sorted(s for s in costs if p99[s] <= 10)  # published p99 well inside 10 ms
    excluded = {r["candidate"].split(" / ")[0]: r for r in context["excluded"]}
    assert set(excluded) == {s for s in costs if p99[s] > 10}
    for system, row in excluded.items():
        assert row["failed"] == "p99 <= 10 ms" and any(f"{p99[system]:.4g} ms" in r for r in row["reasons"])
    assert context["capacity"] == [] and context["capacity_note"] == "no target load was given"
    planned = recommend(frame, constraints, "cost", catalog, target_load=20000)
    plan, _ = decision_report_context(planned, task="resnet50", scenario="server")
    winner = planned.winner["candidate"].split(" / ")[0]
    units = math.ceil(20000 * 1.2 / costs[winner][1]) + 1  # 20% headroom, N+1
    assert ("units", f"{units} (from {units} to {units} over the throughput interval)") in plan["capacity"]
    provenance = {r["candidate"].split(" / ")[0]: r for r in context["provenance"]}
    assert {s: (r["source"], r["submitter"]) for s, r in provenance.items()} == {
        s: ("MLPerf Inference v4.1 closed", c[2]) for s, c in costs.items()}
    assert {b.key for b in blocks} == {"objective", "pareto"}
    html = render_decision_report(rec, task="resnet50", scenario="server", candidates=len(frame), catalog=catalog)
    assert "EXAMPLE figures, not quotes" in html and "What if a bound" in html and "Binding constraint" in html
    assert_opens_offline(html, tmp_path, "decision-mlperf", 2)


def test_decision_report_escapes_names_and_notes_in_a_browser(more_store, tmp_path):
    from engine import Constraints, recommend
    from engine.candidates import load
    from reports.decision import objective_chart, render_decision_report

    frame = load(more_store, "digits", "single_stream")
    rec = recommend(frame, Constraints.build(max_p99_ms=2.0), "latency")
    def pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:  # (system name without its CPU count, backend)
        return set(zip(frame["system"].astype(str).str.rsplit(" [", n=1).str[0], frame["backend"].astype(str)))

    # the median p99 of the history's runs: 1.5 ms (steady, onnxruntime) and 2.25 ms or more for the others
    assert pairs(rec.excluded) >= {(SYSTEMS["other"], "onnxruntime"), (SYSTEMS["other"], "openvino"),
                                   (SYSTEMS["steady"], "openvino")}
    assert (SYSTEMS["steady"], "onnxruntime") in pairs(rec.ranked) and len(rec.ranked) >= len(CONFIGS) + 1
    html = render_decision_report(rec, task="digits", scenario="single_stream", note=EVIL_IMG + EVIL)
    assert_escaped(html, EVIL, EVIL_IMG, EVIL_IMG + EVIL)
    for row in rec.excluded.to_dict("records"):  # every exclusion explained
        for reason in rec.why_excluded(row["candidate"]):
            assert str(__import__("markupsafe").escape(reason)) in html
    spec = objective_chart(rec).to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert [r["objective"] for r in rows] == pytest.approx(sorted(r["objective"] for r in rows))  # lowest p99 first
    assert len(rows) == min(len(rec.ranked), 40) and spec["layer"][0]["encoding"]["x2"]["field"] == "high"
    assert_opens_offline(html, tmp_path, "decision-digits", 2)


# -- trends -------------------------------------------------------------------------------------

def gmean(values) -> float:
    return float(np.exp(np.mean(np.log(values))))


def test_trend_report_leaderboard_changes_and_change_points(more_db, more_store):
    from analysis.load import config_key
    from reports.trend import trend_report_context

    context, blocks = trend_report_context(more_store, "2026Q3", note=EVIL)
    assert context["runs"] == 12 + 112 and context["runs_in_quarter"] == 12 + 16  # the real run (2026Q4) left out
    (panel,) = context["panels"]
    assert (panel["task"], panel["scenario"], panel["metric"], panel["lower"]) == ("digits", "single_stream",
                                                                                  "latency_p90_ms", True)
    expected = {f"{EVIL} / onnxruntime / fp32": gmean([more_db["p90"] * f for _, fs in CONFIGS.values() for f in fs])}
    for series, system in SYSTEMS.items():
        for backend, scale in (("onnxruntime", 1.0), ("openvino", 1.5)):
            expected[f"{system} / {backend} / fp32"] = gmean([history_value(series, 6, k) * scale for k in range(4)])
    board = panel["leaderboard"]
    assert [r["label"] for r in board] == sorted(expected, key=expected.get)
    assert [r["gmean"] for r in board] == pytest.approx(sorted(expected.values()), rel=1e-9)
    assert [r["previous_rank"] for r in board] == [None, 1, 2, 3, 4]
    rows = {r["label"]: r for r in panel["rows"]}
    grows = rows["Plain box / onnxruntime / fp32"]
    ids = more_db["history"]
    a, b = (headlines(more_store, ids[("other", "onnxruntime", q)]) for q in ("2026Q2", "2026Q3"))
    ratio, low, high = welch_ratio(a, b)
    assert (grows["change"]["ratio"], grows["change"]["low"], grows["change"]["high"]) == pytest.approx(
        (ratio, low, high), rel=1e-9)
    assert ratio == pytest.approx(1.05) and grows["change"]["verdict"] == "worse"  # latency up 5%
    steady = rows[f"{SYSTEMS['steady']} / onnxruntime / fp32"]
    (step,) = steady["change_points"]
    assert step["run_id"] == ids[("steady", "onnxruntime", "2026Q2")][0] and step["quarter"] == "2026Q2"
    assert step["ratio"] == pytest.approx(0.8, rel=1e-9)
    assert steady["change"]["verdict"] == "no significant change"
    repro = {r["config_key"]: r for r in panel["repro"]}
    a_key, d_key = (config_key(more_store.get_run(more_db["configs"][n][0])) for n in "AD")
    assert repro[a_key]["reproducible"] and repro[a_key]["max_deviation"] == pytest.approx(0.005, rel=1e-6)
    assert not repro[d_key]["reproducible"] and repro[d_key]["max_deviation"] == pytest.approx(0.04, rel=1e-6)
    assert repro[d_key]["cv"] == pytest.approx(np.std(np.log([1.00, 1.04, 0.97]), ddof=1), rel=1e-9)
    summary = " ".join(context["summary"])
    assert "+5.0% [" in summary and f"new leader in 2026Q3, {EVIL} / onnxruntime / fp32" in summary
    assert f"after {SYSTEMS['steady']} / onnxruntime / fp32" in summary and "Change point in 2026Q3" not in summary
    assert [b.key for b in blocks] == ["trend_0"]


def test_trend_report_in_a_browser_and_its_chart(more_store, tmp_path):
    from reports.trend import render_trend_report

    html = render_trend_report(more_store, "2026q3", note=EVIL_IMG)
    assert_escaped(html, EVIL, EVIL_IMG)
    spec = chart_specs(html)["trend_0"]
    _, band, line, rules, labels = spec["layer"]
    assert line["encoding"]["x"]["scale"]["domain"] == QUARTERS and band["encoding"]["y2"]["field"] == "high"
    assert rules["mark"]["strokeDash"] == [5, 3] and labels["encoding"]["text"]["field"] == "change"
    assert_opens_offline(html, tmp_path, "trend", 1)
    assert periods_of(pd.Series([pd.Timestamp("2026-09-30T23:59Z")]))[0] == pd.Period("2026Q3", "Q")


@pytest.mark.parametrize("quarter, message", [
    ("2026Q5", "write it as YEARQn"), ("Q3 2026", "write it as YEARQn"),
    ("2024Q4", "no runs in 2024Q4 (any task); the runs span 2025Q1 to 2026Q4")])
def test_trend_report_bad_quarters(more_store, quarter, message):
    from reports.trend import render_trend_report
    from runner.errors import AnalysisError

    with pytest.raises(AnalysisError, match=re.escape(message)):
        render_trend_report(more_store, quarter)


# -- the reproducible badge ---------------------------------------------------------------------

def test_reproducible_badge_comes_from_the_replicas_verdict(more_db, more_store):
    from reports.badges import NoVerdictYet, reproducibility_verdict, run_badge

    configs = more_db["configs"]
    good = more_store.get_run(configs["A"][1])
    verdict = reproducibility_verdict(more_store, good)
    assert verdict["run_ids"] == configs["A"] and verdict["reproducible"]
    cv = np.std(np.log([1.00, 1.005, 0.995]), ddof=1)
    badge = run_badge(good, "reproducible", verdict)
    assert (badge.label, badge.color) == ("reproducible", "#4c1")
    assert badge.message == f"yes \u00b7 3 runs within \u00b12%, CV {cv:.1%}"
    bad = more_store.get_run(configs["D"][0])
    badge = run_badge(bad, "reproducible", reproducibility_verdict(more_store, bad))
    assert badge.message.startswith("no \u00b7 3 runs, one 4.0% off (\u00b12%)") and badge.color == "#dfb317"
    with pytest.raises(NoVerdictYet, match="configuration has 1 complete run"):
        reproducibility_verdict(more_store, more_store.get_run(more_db["real"]))


# -- the command line ---------------------------------------------------------------------------

def test_report_commands_write_the_files(more_db, more_store, tmp_path):
    db, configs = more_db["db"], more_db["configs"]
    refs = [config_ref(more_store, configs[n][0])[:15] for n in "AB"]
    jobs = {"compare.html": ("compare", *refs, "--note", EVIL),
            "decision.html": ("decision", "--task", "digits", "--scenario", "single_stream", "--max-p99-ms", "2",
                              "--objective", "latency", "--no-what-if"),
            "trend.html": ("trend", "--quarter", "2026-Q3", "--task", "digits")}
    for name, args in jobs.items():
        proc = cli("report", *args, "--out", str(tmp_path / name), "--json", db=db, check=True)
        result = json.loads(proc.stdout)
        assert result["out"] == str(tmp_path / name) and result["bytes"] == (tmp_path / name).stat().st_size
        assert "<!DOCTYPE html>" in (tmp_path / name).read_text()
    assert json.loads(cli("report", "trend", "--quarter", "2026Q3", "--json", "--out", str(tmp_path / "t.html"),
                          db=db).stdout)["quarter"] == "2026Q3"
    proc = cli("badge", str(configs["A"][0]), "--kind", "reproducible", "--json", db=db, check=True)
    assert json.loads(proc.stdout)["message"].startswith("yes \u00b7 3 runs")


@pytest.mark.parametrize("args, message", [
    (("report", "compare", "1"), "compare needs a baseline and at least one other"),
    (("report", "trend", "--quarter", "2026Q5"), "write it as YEARQn"),
    (("report", "decision", "--task", "nope", "--scenario", "offline"), "no complete runs of task 'nope'"),
    (("report", "compare", "1", "99999"), "no run '99999'"),
])
def test_report_commands_refuse_bad_input_with_exit_2(more_db, tmp_path, args, message):
    proc = cli(*args, "--out", str(tmp_path / "x.html"), db=more_db["db"])
    assert proc.returncode == 2 and message.lower() in proc.stderr.lower(), proc.stderr
    assert not (tmp_path / "x.html").exists()


def test_every_report_command_has_help_with_an_example():
    from click.testing import CliRunner

    from infersight.cli.report import report_group

    for name in ("run", "compare", "decision", "trend"):
        result = CliRunner().invoke(report_group, [name, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output and "--out" in result.output, name


# -- the app's Reports page ---------------------------------------------------------------------

def without_timestamp(html: str) -> str:
    return re.sub(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC", "", html)


def test_reports_page_generates_the_same_files(more_db, more_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import REPO
    from reports.run import render_run_report
    from reports.trend import render_trend_report

    monkeypatch.setenv("INFERSIGHT_DB", str(more_db["db"]))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.query_params["page"] = "Reports"
    at.run()
    assert not at.exception and at.title[0].value == "Reports"

    def generate(kind: str, **values) -> tuple[str, str]:
        at.radio(key="rep_kind").set_value(kind).run()
        widgets = {w.key: w for widget in ("selectbox", "number_input", "text_area") for w in at.get(widget)}
        for key, value in values.items():  # keys of fields that follow the task and scenario carry them
            widgets.get(key, next((w for k, w in widgets.items() if str(k).startswith(key)), None)).set_value(value)
        at.button[0].click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        got_kind, name, html = at.session_state["rep_html"]
        assert got_kind == kind and at.get("download_button")
        return name, html

    name, html = generate("run", rep_run=more_db["real"])
    assert name == f"run-{more_db['real']}.html"
    assert without_timestamp(html) == without_timestamp(render_run_report(more_store, more_db["real"]))
    name, html = generate("trend", rep_quarter="2026Q3", rep_note=EVIL)
    assert name == "trends-2026Q3.html"
    assert without_timestamp(html) == without_timestamp(render_trend_report(more_store, "2026Q3", note=EVIL))
    name, html = generate("decision", rep_objective="latency", rep_max_p99_ms=2.0, rep_min_accuracy_ratio=0.0)
    assert name == "decision-digits-single_stream.html"
    assert "Decision: digits under single_stream" in html and "p99 &lt;= 2 ms" in html
    name, html = generate("compare")
    assert name == "compare.html" and "Against the baseline A" in html
