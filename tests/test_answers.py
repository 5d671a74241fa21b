"""Answers a buyer can trust: a Server configuration is one candidate with its capacity from its peak search
(else a marked lower bound); bounds that mean nothing in a scenario are refused with a sentence; cost per
million tokens for generative tasks; what-if within possible values; the quarterly trend report with a
panel that has no data in the quarter; `runs` at its limit; tabular exports."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from conftest import REPO, cli
from engine import Constraints, recommend
from engine.candidates import from_records, load
from runner.errors import EngineError
from runner.importers import import_tree
from runner.peak import PeakSettings, run_peak_search
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store

GOOGLE = REPO.parent / "shared/data/mlperf/v4.1/closed/Google"  # small: two SDXL systems, dated 2024Q3


def _server(qps: float) -> RunRequest:
    return RunRequest("digits", scenario="server", quick=True, backend_settings={"intra_op_threads": 1},
                      scenario_settings={"target_qps": qps, "latency_bound_ms": 2000})  # VALID on a busy machine


@pytest.fixture(scope="module")
def answers_db(tmp_path_factory, digits_models):
    """Quick digits runs: server at 400 and 800 QPS (fixed), a peak search of the same configuration from 400
    QPS up to at most 800 (two probes); and one MLPerf submitter's results (dated 2024Q3)."""
    db = tmp_path_factory.mktemp("answers") / "answers.db"
    with Store(str(db)) as s:
        import_tree(s, GOOGLE)
        fixed = [execute_run(prepare_run(_server(q)), s) for q in (400.0, 800.0)]
        search = run_peak_search(_server(400.0), s, PeakSettings(start_qps=400, max_qps=800, repeats_near_edge=1,
                                                                  tolerance=0.5, max_probes=2))
    return {"db": db, "fixed": fixed, "search": search}


def test_a_server_configuration_is_one_candidate_with_its_capacity_from_the_peak(answers_db):
    with Store(str(answers_db["db"])) as s:
        frame = load(s, "digits", "server")
        assert len(frame) == 1, frame["candidate"].tolist()  # never one per tested QPS
        row = frame.iloc[0]
        search = answers_db["search"]
        peak = search.result["peak_qps"]
        assert peak is not None and row["samples_per_s"] == peak
        assert row["capacity_basis"].startswith(f"peak search {search.id}: P(VALID) 1.00 at {peak:,.6g} QPS")
        at_peak = sorted(p["run_id"] for p in search.result["probes"] if p["target_qps"] == peak and p["valid"])
        assert row["run_ids"] == ",".join(map(str, at_peak))
        plan = recommend(frame, Constraints.build(), "throughput", target_load=200).capacity
        assert plan["unit_samples_per_s"] == peak and plan["capacity_basis"] == row["capacity_basis"]
        assert plan["units"] == math.ceil(200 * 1.2 / peak) + 1


def test_without_a_peak_search_capacity_is_a_marked_lower_bound(answers_db):
    with Store(str(answers_db["db"])) as s:
        runs = [s.get_run(i) for i in answers_db["fixed"]]
    valid = [r for r in runs if r.validity == "VALID"]
    assert valid, "a quick digits run at 400-800 QPS should be VALID"
    from engine._capacity import LOWER_BOUND, capacity_runs
    with Store(str(answers_db["db"])) as s:
        chosen = capacity_runs(s, valid)
    top = max(r.settings["scenario"]["target_qps"] for r in valid)
    assert {r.settings["scenario"]["target_qps"] for r, _, _ in chosen} == {top}
    basis = chosen[0][2]
    assert basis.startswith(f"{LOWER_BOUND}: VALID at {top:g} QPS") and "infersight peak" in basis


@pytest.mark.parametrize(("scenario", "bounds", "target", "words"), [
    ("offline", {"max_p99_ms": 15}, None, "p99 <= 15 ms does not apply to the offline scenario"),
    ("offline", {}, None, "the objective p99 does not apply to the offline scenario"),
    ("single_stream", {"max_ttft_ms": 500}, None, "ttft <= 500 ms does not apply to the single_stream"),
    ("single_stream", {}, 1000.0, "a target load needs a scenario with a capacity"),
])
def test_a_bound_that_does_not_apply_to_the_scenario_is_refused(scenario, bounds, target, words):
    frame = from_records([{"system": "a", "scenario": scenario, "samples_per_s": 100.0, "p99_ms": 900.0}])
    objective = "latency" if not bounds and target is None else "throughput"
    with pytest.raises(EngineError) as caught:
        recommend(frame, Constraints.build(**bounds), objective, target_load=target)
    message = str(caught.value)
    assert words in message and "instead" in message and "\n" not in message


def test_generative_cost_is_per_million_tokens():
    rows = [{"system": "a", "scenario": "interactive", "samples_per_s": 2.0, "tokens_per_s": 500.0,
             "ttft_ms": 400.0, "tpot_ms": 30.0, "card_price_per_hour_usd": 10.0},
            {"system": "b", "scenario": "interactive", "samples_per_s": 1.0, "tokens_per_s": 800.0,
             "ttft_ms": 300.0, "tpot_ms": 20.0, "card_price_per_hour_usd": 12.0}]
    frame = from_records(rows)
    frame["card_price_per_hour_usd"] = [10.0, 12.0]
    from engine.catalog import Catalog
    rec = recommend(frame, Constraints.build(max_ttft_ms=2000, max_tpot_ms=100), "cost", Catalog())
    assert rec.objective.text() == "cost_per_million_tokens"
    assert rec.winner["system"] == "b"  # 12 USD/h for 800 tokens/s beats 10 USD/h for 500
    assert rec.winner["cost_per_million_tokens_usd"] == pytest.approx(12 / (800 * 3600) * 1e6)


def test_what_if_keeps_an_accuracy_ratio_at_most_1():
    frame = from_records([{"system": s, "scenario": "offline", "samples_per_s": v, "accuracy_ratio": r}
                          for s, v, r in (("a", 100.0, 0.995), ("b", 200.0, 0.97))])
    rec = recommend(frame, Constraints.build(min_accuracy_ratio=0.99), "throughput", what_if=True)
    moved = rec.what_if[rec.what_if["parameter"] == "accuracy_ratio >= 0.99"]["value"]
    assert moved.max() == 1.0 and len(moved) == len(set(moved)) == 3  # 0.495, 0.891, 1 (1.089 and 1.485 are not)


def test_trend_report_with_a_panel_without_data_in_the_quarter(answers_db):
    from reports.trend import trend_report_context

    quarter = str(pd.Timestamp.now(tz="UTC").tz_localize(None).to_period("Q"))
    with Store(str(answers_db["db"])) as s:
        context, charts = trend_report_context(s, quarter)
    empty = [p for p in context["panels"] if not p["leaderboard"]]
    assert empty and any(p["task"].endswith("stable-diffusion-xl") for p in empty)
    drawn = {c.key for c in charts}
    assert drawn and all(p["key"] not in drawn for p in empty)
    order = [p["key"] in drawn for p in context["panels"]]
    assert order == sorted(order, reverse=True)  # panels with data first
    for block in charts:  # every value a chart draws is finite
        for rows in block.spec.get("datasets", {}).values():
            assert all(math.isfinite(r[k]) for r in rows for k in ("gmean",) if k in r)
    html = cli("report", "trend", "--quarter", quarter, "--out", str(answers_db["db"].with_suffix(".html")),
               db=answers_db["db"])
    assert html.returncode == 0, html.stderr
    assert "No data in" in answers_db["db"].with_suffix(".html").read_text()


def test_runs_says_when_it_stops_at_the_limit(answers_db):
    shown = cli("runs", "--limit", "2", db=answers_db["db"])
    assert shown.returncode == 0, shown.stderr
    assert "showing the newest 2 runs only" in shown.stdout and "quick" in shown.stdout
    assert "intra_op_threads=1" in shown.stdout and "cores" in shown.stdout
    every = cli("runs", "--limit", "0", db=answers_db["db"])
    assert "showing the newest" not in every.stdout


def test_export_runs_and_queries(answers_db, tmp_path):
    db = answers_db["db"]
    tables = {}
    for fmt in ("csv", "parquet", "json"):
        path = tmp_path / f"runs.{fmt}"
        done = cli("export", "runs", "--format", fmt, "--out", str(path), "--task", "digits", db=db)
        assert done.returncode == 0, done.stderr
        tables[fmt] = {"csv": pd.read_csv, "parquet": pd.read_parquet,
                       "json": lambda p: pd.DataFrame(json.loads(p.read_text()))}[fmt](path)
    with Store(str(db)) as s:
        ids = sorted(r.id for r in s.list_runs(task="digits", limit=None))
    for table in tables.values():
        assert sorted(table["id"]) == ids and set(table["quick"]) == {True}
        assert set(table["settings"].str.contains("intra_op_threads=1")) == {True}
    server = tables["parquet"][tables["parquet"]["scenario"] == "server"]
    assert set(server["target_qps"]) >= {400.0, 800.0}
    run = answers_db["fixed"][0]
    path = tmp_path / "queries.parquet"
    assert cli("export", "queries", str(run), "--out", str(path), db=db).returncode == 0
    queries = pd.read_parquet(path)
    with Store(str(db)) as s:
        count = s.get_run(run).summary.get("query_count") or len(s.read_perf_samples(run)["completed_ns"])
    assert len(queries) == count and (queries["latency_ms"] > 0).all()
    with Store(str(db)) as s:
        imported = s.list_runs(source="mlperf", limit=1)[0].id
    bad = cli("export", "queries", str(imported), "--out", str(tmp_path / "q2.parquet"), db=db)
    assert bad.returncode == 2 and "imported from MLPerf" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "q2.parquet").exists()
    bad = cli("export", "runs", "--out", str(tmp_path / "missing" / "r.csv"), db=db)
    assert bad.returncode == 2 and "does not exist" in bad.stderr


def test_look_alike_configurations_are_named_by_the_setting_that_differs(answers_db):
    from reports.compare import compare_report_context

    a, b = answers_db["fixed"]
    with Store(str(answers_db["db"])) as s:
        context, _ = compare_report_context(s, [str(a), str(b)])
    labels = [side["label"] for side in context["sides"]]
    assert labels[0].endswith(", target_qps=400)") and "intra_op_threads=1" in labels[0], labels
    assert labels[1].endswith(", target_qps=800)") and labels[0].split(" (")[0][3:] == labels[1].split(" (")[0][3:]
    shown = cli("runs", "--task", "digits", db=answers_db["db"]).stdout
    assert "target_qps=400" in shown and "target_qps=800" in shown
