"""Constraints and objectives: units stated and converted, bad and contradictory bounds refused clearly."""

from __future__ import annotations

import pytest

from engine import Constraints, parse_bound, parse_objective
from engine.constraints import METRICS, OPTION_BOUNDS
from runner.errors import EngineError, InfersightError


def test_options_become_bounds_in_the_units_their_names_give():
    c = Constraints.build(max_p99_ms=15, min_accuracy_ratio=0.99, min_throughput_per_s=20000, max_power_w=None)
    assert c.texts() == ["p99 <= 15 ms", "accuracy_ratio >= 0.99", "throughput >= 20000 samples/s"]
    assert [b.upper for b in c] == [True, False, False]


@pytest.mark.parametrize("text, metric, op, value", [
    ("p99 <= 15 ms", "p99", "<=", 15.0),
    ("p99<=0.015s", "p99", "<=", 15.0),
    ("p90 < 250 us", "p90", "<=", 0.25),
    ("p50 <= 2e6 ns", "p50", "<=", 2.0),
    ("throughput >= 2e4 /s", "throughput", ">=", 20000.0),
    ("throughput >= 5000 QPS", "throughput", ">=", 5000.0),
    ("tokens >= 300 tokens/s", "tokens", ">=", 300.0),
    ("power <= 1.5 kW", "power", "<=", 1500.0),
    ("accuracy_ratio >= 99 %", "accuracy_ratio", ">=", 0.99),
    ("accuracy_ratio >= 0.99", "accuracy_ratio", ">=", 0.99),
    ("accuracy >= 75.9", "accuracy", ">=", 75.9),
    ("cost_per_million <= 0.05 USD", "cost_per_million", "<=", 0.05),
    ("cost_per_hour <= 20 USD/h", "cost_per_hour", "<=", 20.0),
    ("units <= 4", "units", "<=", 4.0),
])
def test_bounds_are_read_with_their_units_converted(text, metric, op, value):
    bound = parse_bound(text)
    assert (bound.metric, bound.op) == (metric, op)
    assert bound.value == pytest.approx(value)


@pytest.mark.parametrize("text, says", [
    ("p99 <= 15", "p99 gives no unit; it takes 'ns', 'us', 'µs', 'ms', 's'"),
    ("p99 <= 15 W", "p99 has unit 'W'"),
    ("throughput >= 100 ms", "throughput has unit 'ms'"),
    ("accuracy >= 75 %", "written without one"),
    ("latency <= 15 ms", "unknown metric 'latency'"),
    ("p99 is small", "cannot read the constraint"),
    ("p99 <= -3 ms", "a bound must be a positive number"),
    ("accuracy_ratio >= 99", "did you mean 0.99"),
    ("units <= 2.5", "units are whole numbers"),
])
def test_bad_bounds_say_what_is_wrong(text, says):
    with pytest.raises(EngineError) as caught:
        parse_bound(text)
    assert says in str(caught.value)
    assert isinstance(caught.value, InfersightError) and caught.value.exit_code == 2


@pytest.mark.parametrize("bounds, says", [
    (["p99 >= 20 ms", "p99 <= 15 ms"], "contradictory: p99 >= 20 ms and p99 <= 15 ms cannot both hold"),
    (["p50 >= 20 ms", "p99 <= 15 ms"], "p50 never exceeds p99"),
    (["p90 >= 16 ms", "p99 <= 15 ms"], "p90 never exceeds p99"),
    (["ttft >= 2 s", "p99 <= 1 s"], "ttft never exceeds p99"),
    (["power >= 2 kW", "power <= 1000 W"], "cannot both hold"),
])
def test_contradictory_constraints_are_refused(bounds, says):
    with pytest.raises(EngineError) as caught:
        Constraints.build(bounds)
    assert says in str(caught.value)


def test_consistent_pairs_are_kept_and_the_tightest_decides_contradictions():
    assert len(Constraints.build(["p50 <= 20 ms", "p99 <= 15 ms"])) == 2  # redundant, not contradictory
    assert len(Constraints.build(["p99 >= 10 ms", "p99 <= 15 ms"])) == 2
    with pytest.raises(EngineError, match="p99 >= 16 ms and p99 <= 15 ms"):
        Constraints.build(["p99 >= 10 ms", "p99 >= 16 ms", "p99 <= 20 ms"], max_p99_ms=15)


def test_negative_and_unknown_options_are_refused():
    with pytest.raises(EngineError, match="max_p99_ms: p99 <= -1 ms: a bound must be a positive number"):
        Constraints.build(max_p99_ms=-1)
    with pytest.raises(EngineError, match="unknown constraint option"):
        Constraints.build(max_p98_ms=3)
    with pytest.raises(EngineError, match="unknown metric"):
        Constraints.build(["p98 <= 1 ms"])


def test_with_value_moves_one_bound_and_revalidates():
    c = Constraints.build(["p99 >= 10 ms"], max_p99_ms=15)
    assert c.with_value(1, 22.5).texts() == ["p99 >= 10 ms", "p99 <= 22.5 ms"]
    with pytest.raises(EngineError, match="cannot both hold"):
        c.with_value(1, 7.5)


def test_every_option_names_a_metric_and_every_metric_a_unit():
    assert {metric for metric, _ in OPTION_BOUNDS.values()} <= set(METRICS)
    for option, (metric, op) in OPTION_BOUNDS.items():
        assert option.startswith("max_" if op == "<=" else "min_")


def test_objectives_plain_aliases_and_weighted_mixes():
    assert parse_objective("cost").metric.name == "cost_per_million"
    assert parse_objective("latency").metric.column == "p99_ms"
    assert parse_objective("throughput_per_watt").metric.better == "higher"
    mix = parse_objective("mix:cost=3,p99=1")
    assert mix.is_mix and mix.weights == {"cost_per_million": 0.75, "p99": 0.25}
    for bad, says in (("cheapest", "unknown metric"), ("mix:cost=-1", "must be positive"),
                      ("mix:cost", "write a mix like"), ("mix:cost=x", "is not a number")):
        with pytest.raises(EngineError, match=says):
            parse_objective(bad)
