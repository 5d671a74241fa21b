"""`engine.recommend` on hand-built candidate sets whose answers are known by construction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from engine import Catalog, CatalogEntry, Constraints, CostModel, recommend
from engine.candidates import from_records
from runner.errors import EngineError


def priced(*entries: tuple[str, float]) -> Catalog:
    """A catalogue of rented systems: (name, USD per hour)."""
    return Catalog(systems=tuple(CatalogEntry(system_name=n, price_per_hour_usd=p) for n, p in entries))


def test_candidates_whose_objective_cis_overlap_are_tied():
    frame = from_records([
        {"candidate": "A", "system": "a", "samples_per_s": 1000.0, "samples_per_s_lo": 900.0,
         "samples_per_s_hi": 1100.0},
        {"candidate": "B", "system": "b", "samples_per_s": 950.0, "samples_per_s_lo": 850.0,
         "samples_per_s_hi": 1050.0},
        {"candidate": "C", "system": "c", "samples_per_s": 500.0, "samples_per_s_lo": 480.0, "samples_per_s_hi": 520.0},
    ])
    rec = recommend(frame, Constraints(), "throughput")
    assert rec.ranked["candidate"].tolist() == ["A", "B", "C"]
    assert rec.ranked["rank"].tolist() == [1, 1, 3] and rec.ranked["tied"].tolist() == [True, True, False]
    assert rec.explanation.winner == "A" and rec.explanation.tied_with == ["B"]
    assert any("cannot be told apart" in line for line in rec.explanation.lines)


def test_point_estimates_are_ordered_and_equal_ones_tie():
    frame = from_records([{"candidate": c, "system": c, "samples_per_s": v} for c, v in (("x", 10.0), ("y", 30.0),
                                                                                       ("z", 10.0))])
    rec = recommend(frame, Constraints(), "throughput")
    assert list(zip(rec.ranked["candidate"], rec.ranked["rank"])) == [("y", 1), ("x", 2), ("z", 2)]


def test_cost_ranking_binding_constraint_and_exclusions():
    frame = from_records([
        {"candidate": "cheap", "system": "s1", "samples_per_s": 1000.0, "p99_ms": 9.0, "accuracy_ratio": 0.995},
        {"candidate": "dear", "system": "s2", "samples_per_s": 1000.0, "p99_ms": 5.0, "accuracy_ratio": 0.999},
        {"candidate": "slow", "system": "s3", "samples_per_s": 1000.0, "p99_ms": 12.0, "accuracy_ratio": 0.999},
    ])
    catalog = priced(("s1", 1.0), ("s2", 2.0), ("s3", 0.5))
    rec = recommend(frame, Constraints.build(max_p99_ms=10, min_accuracy_ratio=0.99), "cost", catalog)
    assert rec.ranked["candidate"].tolist() == ["cheap", "dear"]
    # 1 USD/h at 1000/s: 1 / 3.6 USD per million inferences
    assert rec.ranked["cost_per_million_usd"].tolist() == pytest.approx([1 / 3.6, 2 / 3.6])
    # slack: p99 (10 - 9) / 10 = 10%, accuracy (0.995 - 0.99) / 0.99 = 0.505%: accuracy binds
    assert rec.explanation.binding["bound"] == "accuracy_ratio >= 0.99"
    assert rec.explanation.binding["slack"] == pytest.approx(0.005)
    assert rec.explanation.binding["slack_rel"] == pytest.approx(0.005 / 0.99)
    row = rec.excluded.iloc[0]
    assert (row["candidate"], row["failed"], row["status"]) == ("slow", "p99 <= 10 ms", "fails")
    assert (row["shortfall"], row["shortfall_rel"]) == pytest.approx((2.0, 0.2))
    assert rec.why_excluded("slow") == ["p99 <= 10 ms: fails (P = 0.00) at 12 ms, short by 2 ms (+20.0%)"]
    assert rec.why_excluded("cheap") == []
    assert rec.explanation.excluded_by == {"p99 <= 10 ms": 1, "accuracy_ratio >= 0.99": 0}


def test_no_candidate_meets_gives_nearest_misses_and_what_to_relax():
    frame = from_records([
        {"candidate": "X", "system": "x", "p99_ms": 11.0, "samples_per_s": 1200.0},   # p99 10% over
        {"candidate": "Y", "system": "y", "p99_ms": 9.0, "samples_per_s": 800.0},     # throughput 20% short
        {"candidate": "Z", "system": "z", "p99_ms": 30.0, "samples_per_s": 100.0},    # far off on both
    ])
    rec = recommend(frame, Constraints.build(max_p99_ms=10, min_throughput_per_s=1000), "throughput")
    assert rec.ranked.empty and rec.winner is None and rec.explanation.winner is None
    assert "No candidate meets all constraints." in rec.explanation.lines
    misses = rec.explanation.nearest_misses
    assert [m["candidate"] for m in misses] == ["X", "Y", "Z"]
    assert misses[0]["relax"] == [{"bound": "p99 <= 10 ms", "to": pytest.approx(11.0), "to_text": "11 ms",
                                   "by_rel": pytest.approx(0.1)}]
    assert misses[2]["total_relaxation"] == pytest.approx(2.0 + 0.9)
    relax = {r["bound"]: r for r in rec.explanation.relax}
    assert relax["p99 <= 10 ms"]["first"] == "X" and relax["p99 <= 10 ms"]["to"] == pytest.approx(11.0)
    assert relax["throughput >= 1000 samples/s"]["first"] == "Y"
    assert relax["throughput >= 1000 samples/s"]["by_rel"] == pytest.approx(-0.2)
    assert rec.excluded["candidate"].tolist() == ["X", "Y", "Z"]  # nearest first


def test_probability_of_meeting_and_uncertain_candidates():
    # p99 9.5 ms, 95% CI [8, 11] against p99 <= 10 ms: P = Phi(0.5 / (1.5 / 1.96)) = 0.743: uncertain
    frame = from_records([
        {"candidate": "sure", "system": "s", "samples_per_s": 100.0, "p99_ms": 5.0, "p99_ms_lo": 4.5, "p99_ms_hi": 5.5},
        {"candidate": "maybe", "system": "m", "samples_per_s": 200.0, "p99_ms": 9.5, "p99_ms_lo": 8.0,
         "p99_ms_hi": 11.0},
    ])
    expected = stats.norm.cdf(10, loc=9.5, scale=1.5 / stats.norm.ppf(0.975))
    rec = recommend(frame, Constraints.build(max_p99_ms=10), "throughput")
    assert rec.ranked["candidate"].tolist() == ["sure"]
    maybe = rec.excluded.iloc[0]
    assert maybe["status"] == "uncertain" and maybe["p_max_p99"] == pytest.approx(expected)
    assert expected == pytest.approx(0.743, abs=1e-3)
    both = recommend(frame, Constraints.build(max_p99_ms=10), "throughput", include_uncertain=True)
    assert both.ranked["candidate"].tolist() == ["maybe", "sure"]
    assert both.ranked["p_all"].tolist() == pytest.approx([expected, 1.0])


def test_missing_figures_make_a_candidate_unknown_not_a_winner():
    frame = from_records([{"candidate": "no latency", "system": "a", "samples_per_s": 9e9},
                          {"candidate": "measured", "system": "b", "samples_per_s": 10.0, "p99_ms": 3.0}])
    rec = recommend(frame, Constraints.build(max_p99_ms=10), "throughput")
    assert rec.ranked["candidate"].tolist() == ["measured"]
    assert rec.excluded.iloc[0]["status"] == "unknown"
    assert rec.why_excluded("no latency") == ["p99 <= 10 ms: no p99 latency figure"]


def test_capacity_plan_for_a_target_load():
    frame = from_records([{"candidate": "unit", "system": "u", "samples_per_s": 7000.0, "samples_per_s_lo": 6000.0,
                           "samples_per_s_hi": 8000.0, "power_w": 300.0}])
    rec = recommend(frame, Constraints(), "cost", priced(("u", 1.0)), target_load=20000,
                    cost=CostModel(headroom=0.2, n_plus_one=True))
    plan = rec.capacity
    assert (plan["units"], plan["units_lo"], plan["units_hi"]) == (5, 4, 5)
    assert plan["cost_per_hour_usd"] == pytest.approx(5.0) and plan["power_w"] == pytest.approx(1500)
    assert plan["cost_per_million_usd"] == pytest.approx(5.0 / (20000 * 3600) * 1e6)
    with pytest.raises(EngineError, match="needs a target load"):
        recommend(frame, Constraints.build(max_units=3), "cost", priced(("u", 1.0)))
    small = recommend(frame, Constraints.build(max_units=3), "cost", priced(("u", 1.0)), target_load=20000)
    assert small.ranked.empty and small.excluded.iloc[0]["failed"] == "units <= 3"


def test_a_target_load_can_change_the_cheapest_choice():
    # per inference the big unit is cheaper; for 1,000/s one small unit (and its spare) costs less
    frame = from_records([{"candidate": "big", "system": "big", "samples_per_s": 100000.0},
                          {"candidate": "small", "system": "small", "samples_per_s": 2000.0}])
    catalog = priced(("big", 10.0), ("small", 1.0))
    assert recommend(frame, Constraints(), "cost", catalog).explanation.winner == "big"
    assert recommend(frame, Constraints(), "cost", catalog, target_load=1000).explanation.winner == "small"


def test_what_if_reports_when_the_winner_changes():
    frame = from_records([{"candidate": "A", "system": "a", "samples_per_s": 1000.0, "p99_ms": 9.5},
                          {"candidate": "B", "system": "b", "samples_per_s": 1000.0, "p99_ms": 8.0}])
    rec = recommend(frame, Constraints.build(max_p99_ms=10), "cost", priced(("a", 1.0), ("b", 1.05)), what_if=True)
    assert rec.explanation.winner == "A"
    moves = {(r["parameter"], r["change"]): r for r in rec.what_if.to_dict("records")}
    dearer = moves[("price of a (factor)", "+10%")]
    assert dearer["winner"] == "B" and dearer["winner_changed"] and dearer["value"] == pytest.approx(1.1)
    assert not moves[("price of a (factor)", "-10%")]["winner_changed"]
    assert moves[("p99 <= 10 ms", "-10%")]["winner"] == "B"       # 9 ms excludes A (9.5 ms)
    assert moves[("p99 <= 10 ms", "-50%")]["winner"] == "(none)"  # 5 ms excludes both
    assert not moves[("p99 <= 10 ms", "+50%")]["winner_changed"]
    assert moves[("price of b (factor)", "-10%")]["winner"] == "B"  # 0.945 < 1.0


def test_a_weighted_mix_trades_objectives_off():
    frame = from_records([{"candidate": "fast", "system": "f", "samples_per_s": 1000.0, "p99_ms": 20.0},
                          {"candidate": "snappy", "system": "s", "samples_per_s": 500.0, "p99_ms": 2.0}])
    assert recommend(frame, Constraints(), "mix:throughput=0.9,p99=0.1").explanation.winner == "fast"
    assert recommend(frame, Constraints(), "mix:throughput=0.1,p99=0.9").explanation.winner == "snappy"
    rec = recommend(frame, Constraints(), "mix:throughput=0.9,p99=0.1")
    assert rec.ranked["objective"].tolist() == pytest.approx([0.9, 0.1])  # scores scaled to [0, 1]


def test_power_efficiency_objective_uses_measured_power_before_the_catalogue():
    frame = from_records([{"candidate": "m", "system": "m", "samples_per_s": 1000.0, "power_w": 100.0},
                          {"candidate": "t", "system": "t", "samples_per_s": 1000.0}])
    catalog = Catalog(systems=(CatalogEntry(system_name="m", tdp_w=50), CatalogEntry(system_name="t", tdp_w=200)))
    rec = recommend(frame, Constraints(), "throughput_per_watt", catalog)
    assert rec.ranked["throughput_per_watt"].tolist() == pytest.approx([10.0, 5.0])
    assert rec.ranked["power_source"].tolist() == ["measured", "catalogue tdp_w"]


def test_requests_that_cannot_be_answered_say_why():
    frame = from_records([{"candidate": "a", "system": "nowhere", "samples_per_s": 10.0}])
    with pytest.raises(EngineError, match="needs prices, and none of the 1 systems has one"):
        recommend(frame, Constraints(), "cost", priced(("elsewhere", 1.0)))
    with pytest.raises(EngineError, match="target load must be a positive number"):
        recommend(frame, Constraints(), "throughput", target_load=-5)
    with pytest.raises(EngineError, match="no candidates"):
        recommend(frame.iloc[0:0], Constraints(), "throughput")
    with pytest.raises(EngineError, match="unknown metric"):
        recommend(frame, Constraints(), "speed")


def test_candidates_without_a_price_are_excluded_with_the_reason():
    frame = from_records([{"candidate": "priced", "system": "p", "samples_per_s": 10.0},
                          {"candidate": "unpriced", "system": "u", "samples_per_s": 10.0}])
    rec = recommend(frame, Constraints(), "cost", priced(("p", 1.0)))
    assert rec.ranked["candidate"].tolist() == ["priced"]
    assert rec.excluded.iloc[0]["status"] == "no objective figure"
    assert "system 'u' has no price" in rec.why_excluded("unpriced")[0]


def test_the_answer_as_json_and_the_default_frontier():
    frame = from_records([{"candidate": "a", "system": "a", "samples_per_s": 10.0, "p99_ms": 1.0},
                          {"candidate": "b", "system": "b", "samples_per_s": 20.0, "p99_ms": 2.0},
                          {"candidate": "c", "system": "c", "samples_per_s": 5.0, "p99_ms": 3.0}])
    rec = recommend(frame, Constraints.build(max_p99_ms=2.5), "throughput")
    assert rec.pareto_axes == ("throughput", "p99")
    assert rec.frontier["candidate"].tolist() == ["b", "a"]
    data = json.loads(json.dumps(rec.to_dict(), allow_nan=False))
    assert data["winner"]["candidate"] == "b" and data["winner"]["cost_per_million_usd"] is None
    assert data["excluded"][0]["reasons"] == ["p99 <= 2.5 ms: fails (P = 0.00) at 3 ms, short by 0.5 ms (+20.0%)"]
    assert data["constraints"] == ["p99 <= 2.5 ms"] and data["objective"] == "throughput"
    one = recommend(frame.iloc[[0]].reset_index(drop=True), Constraints(), "throughput", pareto=("throughput", "p99"))
    assert one.frontier["candidate"].tolist() == ["a"]


def test_a_bootstrap_column_decides_p_where_given():
    frame = from_records([{"candidate": "boot", "system": "b", "samples_per_s": 1.0, "p99_ms": 9.0}])
    frame["p99_ms_boot"] = [np.array([8.0, 9.0, 10.5, 11.0])]
    rec = recommend(frame, Constraints.build(max_p99_ms=10), "throughput", include_uncertain=True)
    assert rec.ranked["p_max_p99"].tolist() == [0.5]
