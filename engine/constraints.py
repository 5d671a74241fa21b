"""Constraints and objectives of a recommendation, with explicit units, validated and checked for contradictions.

A constraint is a `Bound`: a metric (`p99`, `throughput`, `accuracy_ratio`, ...), `<=` or `>=`, and
a value in the metric's unit (`METRICS`). Bounds come from keyword options (`max_p99_ms=15`, the
unit in the name) or from text that states its unit (`parse_bound("p99 <= 15 ms")`; `15 s` is
converted, `15 W` refused). `Constraints` holds them and refuses sets no candidate could ever meet
(`p99 >= 20 ms` with `p99 <= 15 ms`; `p50 >= 20 ms` with `p99 <= 15 ms`, as p50 never exceeds
p99). An `Objective` names the figure to optimise, or a weighted mix of several.
Deployment metrics (`power`, `cost_per_hour`, `units`) are for the whole capacity plan when a
target load is given, for one unit otherwise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from runner.cards._base import StrictModel
from runner.errors import EngineError

__all__ = ["Metric", "METRICS", "OBJECTIVE_ALIASES", "OPTION_BOUNDS", "Bound", "Constraints", "Objective",
           "parse_bound", "parse_objective", "metric", "validation_message", "SCENARIO_FIGURES", "CAPACITY_SCENARIOS",
           "check_scenario"]


@dataclass(frozen=True)
class Metric:
    """A figure constraints and objectives can name: its candidates column, unit and better direction."""

    name: str
    column: str
    unit: str
    better: Literal["lower", "higher"]
    label: str


_M = Metric
METRICS: dict[str, Metric] = {m.name: m for m in (
    _M("p50", "p50_ms", "ms", "lower", "p50 latency"),
    _M("p90", "p90_ms", "ms", "lower", "p90 latency"),
    _M("p99", "p99_ms", "ms", "lower", "p99 latency"),
    _M("ttft", "ttft_ms", "ms", "lower", "p99 time to first token"),
    _M("tpot", "tpot_ms", "ms", "lower", "p99 time per output token"),
    _M("throughput", "samples_per_s", "samples/s", "higher", "throughput"),
    _M("tokens", "tokens_per_s", "tokens/s", "higher", "token throughput"),
    _M("accuracy", "accuracy", "", "higher", "accuracy"),
    _M("accuracy_ratio", "accuracy_ratio", "ratio", "higher", "accuracy / reference"),
    _M("power", "power_total_w", "W", "lower", "power"),
    _M("cost_per_million", "cost_per_million_usd", "USD", "lower", "cost per million inferences"),
    _M("cost_per_million_tokens", "cost_per_million_tokens_usd", "USD", "lower", "cost per million tokens"),
    _M("cost_per_hour", "cost_per_hour_usd", "USD/h", "lower", "cost per hour"),
    _M("units", "units", "units", "lower", "units needed"),
    _M("throughput_per_usd", "throughput_per_usd", "samples/s per USD/h", "higher", "throughput per dollar"),
    _M("throughput_per_watt", "throughput_per_watt", "samples/s per W", "higher", "throughput per watt"),
)}
OBJECTIVE_ALIASES = {"cost": "cost_per_million", "latency": "p99", "latency_p50": "p50", "latency_p90": "p90",
                     "latency_p99": "p99", "perf_per_dollar": "throughput_per_usd",
                     "perf_per_watt": "throughput_per_watt"}

# scenario -> the figure metrics that mean something in it (deployment metrics apply everywhere). An
# offline run's latency is that of one query holding every sample; TTFT and TPOT exist for token streams.
_LATENCY = ("p50", "p90", "p99")
SCENARIO_FIGURES: dict[str, tuple[str, ...]] = {
    "single_stream": (*_LATENCY, "throughput"),
    "multi_stream": (*_LATENCY, "throughput"),
    "server": (*_LATENCY, "ttft", "tpot", "throughput", "tokens"),
    "interactive": (*_LATENCY, "ttft", "tpot", "throughput", "tokens"),
    "offline": ("throughput", "tokens"),
}
_WHY_NOT = {
    "offline": "an offline run's latency is that of one query holding every sample, not a user's wait",
    "single_stream": "single-stream queries hold one sample each, with no token stream",
    "multi_stream": "multi-stream queries are fixed-size batches, with no token stream",
}
# scenarios whose throughput is a capacity a target load can be planned from
CAPACITY_SCENARIOS = ("server", "offline", "interactive")

# keyword option -> (metric, op): the unit is in the option's name.
OPTION_BOUNDS: dict[str, tuple[str, str]] = {
    "max_p50_ms": ("p50", "<="), "max_p90_ms": ("p90", "<="), "max_p99_ms": ("p99", "<="),
    "max_ttft_ms": ("ttft", "<="), "max_tpot_ms": ("tpot", "<="),
    "min_throughput_per_s": ("throughput", ">="), "min_tokens_per_s": ("tokens", ">="),
    "min_accuracy": ("accuracy", ">="), "min_accuracy_ratio": ("accuracy_ratio", ">="),
    "max_power_w": ("power", "<="), "max_cost_per_million_usd": ("cost_per_million", "<="),
    "max_cost_per_million_tokens_usd": ("cost_per_million_tokens", "<="),
    "max_cost_per_hour_usd": ("cost_per_hour", "<="), "max_units": ("units", "<="),
}

# unit kind -> {spelling: factor to the metric's unit}; "" is "no unit written".
_TIME = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}
_UNITS: dict[str, dict[str, float]] = {
    "ms": _TIME,
    "samples/s": {"/s": 1.0, "samples/s": 1.0, "sample/s": 1.0, "qps": 1.0, "queries/s": 1.0,
                  "inferences/s": 1.0},
    "tokens/s": {"tokens/s": 1.0, "token/s": 1.0},
    "W": {"w": 1.0, "kw": 1e3},
    "USD": {"usd": 1.0, "$": 1.0},
    "USD/h": {"usd/h": 1.0, "$/h": 1.0},
    "ratio": {"": 1.0, "x": 1.0, "%": 0.01},
    "": {"": 1.0},
    "units": {"": 1.0, "units": 1.0},
    "samples/s per USD/h": {"": 1.0},
    "samples/s per W": {"": 1.0},
}
_BOUND = re.compile(r"^\s*(?P<metric>[a-z_0-9]+)\s*(?P<op><=|>=|<|>|=<|=>)\s*(?P<value>[-+0-9.eE]+)"
                    r"\s*(?P<unit>.*?)\s*$")
# (lower percentile, higher percentile): the first never exceeds the second.
_ORDERED = (("p50", "p90"), ("p90", "p99"), ("p50", "p99"), ("ttft", "p99"))


def metric(name: str) -> Metric:
    """The metric called `name` (or an objective alias of it); EngineError listing the known ones."""
    key = OBJECTIVE_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in METRICS:
        raise EngineError(f"unknown metric {name!r}; known: {', '.join(METRICS)} "
                          f"(and {', '.join(OBJECTIVE_ALIASES)})")
    return METRICS[key]


class Bound(StrictModel):
    """One constraint: `metric op value`, the value in the metric's unit (METRICS[metric].unit)."""

    metric: str = Field(description="Metric name, e.g. p99, throughput, accuracy_ratio (see METRICS).")
    op: Literal["<=", ">="] = Field(description="<= for an upper bound, >= for a lower bound.")
    value: float = Field(description="The bound, in the metric's unit (ms, samples/s, USD, W, ...).")

    @field_validator("metric")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
        return name

    @model_validator(mode="after")
    def _sane(self) -> Bound:
        unit = METRICS[self.metric].unit
        if not math.isfinite(self.value) or self.value <= 0:
            raise ValueError(f"{self.text()}: a bound must be a positive number")
        if self.metric == "accuracy_ratio" and self.value > 2:
            raise ValueError(f"{self.text()}: a ratio to the reference (0.99 = 99%); did you mean "
                             f"{self.value / 100:g} or '{self.value:g} %'?")
        if unit == "units" and self.value != int(self.value):
            raise ValueError(f"{self.text()}: units are whole numbers")
        return self

    @property
    def upper(self) -> bool:
        """Whether this is an upper bound (`<=`)."""
        return self.op == "<="

    def text(self) -> str:
        """The bound as a user would write it: 'p99 <= 15 ms'."""
        unit = METRICS[self.metric].unit if self.metric in METRICS else ""
        unit = "" if unit in ("", "ratio", "units") else f" {unit}"
        return f"{self.metric} {self.op} {self.value:g}{unit}"

    @property
    def name(self) -> str:
        """A short unique name of this bound: 'max_p99', 'min_throughput'."""
        return ("max_" if self.upper else "min_") + self.metric


class Constraints(StrictModel):
    """A set of bounds that some candidate could meet (contradictory sets are refused)."""

    bounds: tuple[Bound, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Constraints:
        lower = {b.metric: b for b in self.bounds if not b.upper}
        upper = {b.metric: b for b in self.bounds if b.upper}
        for b in self.bounds:  # the tightest bound of each kind decides
            table = upper if b.upper else lower
            if (b.value < table[b.metric].value) == b.upper:
                table[b.metric] = b
        for name, low in lower.items():
            if name in upper and low.value > upper[name].value:
                raise ValueError(f"contradictory: {low.text()} and {upper[name].text()} cannot both hold")
        for small, large in _ORDERED:
            if small in lower and large in upper and lower[small].value > upper[large].value:
                raise ValueError(f"contradictory: {lower[small].text()} and {upper[large].text()} cannot both "
                                 f"hold ({small} never exceeds {large})")
        return self

    @classmethod
    def build(cls, bounds: list[Bound | str] | tuple = (), **options: float | None) -> Constraints:
        """Constraints from keyword options (OPTION_BOUNDS, e.g. max_p99_ms=15; None is left out) and
        bounds (Bound objects or text like 'p99 <= 15 ms'); EngineError saying what is wrong."""
        unknown = sorted(set(options) - set(OPTION_BOUNDS))
        if unknown:
            raise EngineError(f"unknown constraint option(s) {', '.join(unknown)}; known: {', '.join(OPTION_BOUNDS)}")
        found = [parse_bound(b) if isinstance(b, str) else b for b in bounds]
        for option, value in options.items():
            if value is not None:
                name, op = OPTION_BOUNDS[option]
                found.append(_bound({"metric": name, "op": op, "value": value}, option))
        try:
            return cls(bounds=tuple(found))
        except ValidationError as exc:
            raise EngineError(validation_message(exc)) from None

    def with_value(self, index: int, value: float) -> Constraints:
        """These constraints with bound `index` moved to `value`; EngineError if that is invalid or contradictory."""
        bounds = list(self.bounds)
        old = bounds[index]
        bounds[index] = _bound({"metric": old.metric, "op": old.op, "value": value}, old.name)
        try:
            return Constraints(bounds=tuple(bounds))
        except ValidationError as exc:
            raise EngineError(validation_message(exc)) from None

    def __iter__(self):
        return iter(self.bounds)

    def __len__(self) -> int:
        return len(self.bounds)

    def texts(self) -> list[str]:
        """Each bound as text."""
        return [b.text() for b in self.bounds]


def _bound(data: dict[str, Any], source: str) -> Bound:
    try:
        return Bound.model_validate(data)
    except ValidationError as exc:
        raise EngineError(f"{source}: {validation_message(exc)}") from None


def validation_message(exc: ValidationError) -> str:
    """The messages of a ValidationError, without pydantic's 'Value error, ' prefix."""
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())


def parse_bound(text: str) -> Bound:
    """A Bound from text like 'p99 <= 15 ms', 'throughput >= 20000 /s', 'accuracy_ratio >= 99 %'.

    The unit must be written where the metric has one and must be of the metric's kind; it is
    converted to the metric's unit (15 s -> 15000 ms, 1.2 kW -> 1200 W). EngineError otherwise.
    """
    match = _BOUND.match(text or "")
    if not match:
        raise EngineError(f"cannot read the constraint {text!r}; write it like 'p99 <= 15 ms' or "
                          f"'throughput >= 20000 /s' (metric, <= or >=, value, unit)")
    name = match.group("metric")
    if name not in METRICS:
        raise EngineError(f"{text!r}: unknown metric {name!r}; known: {', '.join(METRICS)}")
    unit = METRICS[name].unit
    spelled = match.group("unit").strip().lower().replace(" ", "")
    factors = _UNITS[unit]
    if spelled not in factors:
        want = ", ".join(repr(s) for s in factors if s) or "no unit"
        problem = "gives no unit" if not spelled else f"has unit {match.group('unit').strip()!r}"
        hint = " (accuracy is in the task's own metric units, written without one)" if name == "accuracy" else ""
        raise EngineError(f"{text!r}: {name} {problem}; it takes {want}{hint}")
    try:
        value = float(match.group("value")) * factors[spelled]
    except ValueError:
        raise EngineError(f"{text!r}: {match.group('value')!r} is not a number") from None
    op = "<=" if match.group("op") in ("<=", "<", "=<") else ">="
    return _bound({"metric": name, "op": op, "value": value}, repr(text))


class Objective(StrictModel):
    """What to optimise: one metric (its better direction from METRICS) or a weighted mix of several."""

    weights: dict[str, float] = Field(description="metric -> weight; one metric with weight 1 for a plain objective.")

    @field_validator("weights")
    @classmethod
    def _valid(cls, weights: dict[str, float]) -> dict[str, float]:
        if not weights:
            raise ValueError("an objective needs at least one metric")
        for name, weight in weights.items():
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
            if not math.isfinite(weight) or weight <= 0:
                raise ValueError(f"weight of {name} must be positive, not {weight}")
        total = sum(weights.values())
        return {name: weight / total for name, weight in weights.items()}

    @property
    def is_mix(self) -> bool:
        """Whether this is a weighted mix of several metrics."""
        return len(self.weights) > 1

    @property
    def metric(self) -> Metric:
        """The single metric of a plain objective (for a mix, its heaviest component)."""
        return METRICS[max(self.weights, key=self.weights.get)]

    def text(self) -> str:
        """'cost_per_million' or 'mix: cost_per_million 0.6, p99 0.4'."""
        if not self.is_mix:
            return next(iter(self.weights))
        return "mix: " + ", ".join(f"{name} {weight:.2g}" for name, weight in self.weights.items())


def parse_objective(text: str | Objective) -> Objective:
    """An Objective from 'cost', 'throughput_per_watt', 'latency' or 'mix:cost=0.6,p99=0.4'."""
    if isinstance(text, Objective):
        return text
    body = (text or "").strip().lower()
    weights: dict[str, float] = {}
    if body.startswith("mix:"):
        for part in filter(None, (p.strip() for p in body[4:].split(","))):
            name, sep, weight = part.partition("=")
            if not sep:
                raise EngineError(f"objective {text!r}: write a mix like 'mix:cost=0.6,p99=0.4'")
            try:
                weights[metric(name).name] = float(weight)
            except ValueError:
                raise EngineError(f"objective {text!r}: weight {weight!r} is not a number") from None
    else:
        weights[metric(body).name] = 1.0
    try:
        return Objective(weights=weights)
    except ValidationError as exc:
        raise EngineError(f"objective {text!r}: {validation_message(exc)}") from None


def check_scenario(scenario: str, bounds: tuple[Bound, ...] | Constraints, objective: Objective | None,
                   target_load: float | None = None) -> None:
    """EngineError, in one sentence saying why and what to do instead, for a bound or objective whose
    figure means nothing under `scenario` (SCENARIO_FIGURES), or a target load on a scenario without a
    capacity; an unknown or empty scenario is not checked."""
    applies = SCENARIO_FIGURES.get(scenario)
    if applies is None:
        return
    named = [(b.text(), b.metric) for b in bounds]
    named += [(f"the objective {n}", n) for n in (objective.weights if objective is not None else ())]
    scenario_bound = {m for figures in SCENARIO_FIGURES.values() for m in figures}
    for text, name in named:
        if name in scenario_bound and name not in applies:
            why = _WHY_NOT.get(scenario, f"{scenario} runs do not measure it")
            where = ", ".join(s for s, figures in SCENARIO_FIGURES.items() if name in figures)
            raise EngineError(f"{text} does not apply to the {scenario} scenario ({why}): bound "
                              f"{', '.join(applies)} instead, or ask for a scenario that measures {name} ({where})")
    if target_load is not None and scenario not in CAPACITY_SCENARIOS:
        raise EngineError(f"a target load needs a scenario with a capacity ({', '.join(CAPACITY_SCENARIOS)}); "
                          f"{scenario} runs measure latency one query at a time: drop the target load, or ask for "
                          f"scenario server instead")
