"""`recommend`: the one entry point the CLI, the Streamlit app and reports call.

    rec = recommend(candidates, constraints, "cost", catalog, target_load=20000)
    rec.ranked        # eligible candidates, best first: rank (ties share one), P per bound, cost, capacity
    rec.excluded      # the others, with the bound each fails worst and by how much
    rec.frontier      # Pareto frontier of the ranked candidates over two metrics
    rec.ranked_head(10), rec.excluded_head(10), rec.frontier_head(10)   # the first rows only
    rec.explanation   # winner, binding constraint, ties, nearest misses and what to relax
    rec.capacity      # the winner's capacity plan for the target load
    rec.what_if       # sensitivity to bounds, prices, tariff and load (with what_if=True)
    rec.to_dict()     # all of it as JSON-compatible data

Every candidate is judged vectorised over the candidates frame (engine._evaluate), no per-candidate Python;
table rows are built only for what is read (engine._rows): a whole table when `ranked`, `excluded` or `frontier`
is first read, its first n rows for `*_head(n)` and `to_dict(limit)`. benchmarks/bench_engine.py times
recommend + to_dict at 100,000 candidates (the issue asks for p95 < 50 ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from engine._evaluate import Evaluation, Options, evaluate
from engine._rows import Rows
from engine.candidates import CANDIDATE_COLUMNS
from engine.catalog import Catalog, price_columns
from engine.constraints import METRICS, Constraints, Objective, check_scenario, metric, parse_objective
from engine.cost import CostModel
from engine.explain import Explanation, excluded_reasons, explain
from engine.pareto import frontier
from engine.whatif import what_if as run_what_if
from runner.errors import EngineError

__all__ = ["Recommendation", "recommend", "cost_model_for"]

_COST_METRICS = ("cost_per_million", "cost_per_million_tokens", "cost_per_hour", "throughput_per_usd")
@dataclass(frozen=True)
class Recommendation:
    """A ranked, explained answer (see the module doc), frozen once made. The tables are built when first read, and
    `ranked_head(n)`, `excluded_head(n)` and `frontier_head(n)` build only their first n rows (the same rows
    as `ranked.head(n)`, ...); `why_excluded(candidate)` explains one exclusion."""

    pareto_axes: tuple[str, str]
    explanation: Explanation
    capacity: dict[str, Any] | None
    what_if: pd.DataFrame | None
    constraints: Constraints
    objective: Objective
    target_load: float | None
    cost_model: CostModel
    assumptions: list[str] = field(default_factory=list)
    _evaluation: Evaluation | None = field(default=None, repr=False)
    _frame: pd.DataFrame | None = field(default=None, repr=False)
    _rows: Rows | None = field(default=None, repr=False)

    @cached_property
    def ranked(self) -> pd.DataFrame:
        """Every ranked candidate, best first (see engine._rows.Rows)."""
        return self._rows.ranked(self._rows.ranked_order())

    @cached_property
    def excluded(self) -> pd.DataFrame:
        """Every candidate not ranked, nearest first, with the bound it fails worst and by how much."""
        return self._rows.excluded(self._rows.excluded_order())

    @cached_property
    def frontier(self) -> pd.DataFrame:
        """The ranked candidates on the Pareto frontier of `pareto_axes`, by the first axis from best."""
        return frontier(self.ranked, *self.pareto_axes)

    @property
    def ranked_count(self) -> int:
        return self._rows.ranked_count

    @property
    def excluded_count(self) -> int:
        return self._rows.excluded_count

    def ranked_head(self, n: int) -> pd.DataFrame:
        """`ranked.head(n)`, building n rows only."""
        return self._rows.ranked(self._rows.ranked_order(n))

    def excluded_head(self, n: int) -> pd.DataFrame:
        """`excluded.head(n)`, building n rows only."""
        return self._rows.excluded(self._rows.excluded_order(n))

    def frontier_head(self, n: int) -> pd.DataFrame:
        """`frontier.head(n)` but indexed from 0 (`frontier` keeps the ranked table's index), building n rows
        only."""
        return self._rows.ranked(self._rows.frontier_order(*self.pareto_axes)[:n])

    @property
    def winner(self) -> dict[str, Any] | None:
        """The first ranked row as a dict, None when no candidate is ranked."""
        return None if self._rows.first is None else _jsonable(self._rows.first)

    def why_excluded(self, candidate: str) -> list[str]:
        """The reasons one candidate is not ranked (empty for a ranked one); KeyError for an unknown name."""
        found = np.flatnonzero((self._frame["candidate"] == candidate).to_numpy())
        if not found.size:
            raise KeyError(f"no candidate {candidate!r}")
        return self._reasons(int(found[0]))

    def _reasons(self, i: int) -> list[str]:
        if self._evaluation.eligible[i]:
            return []
        return excluded_reasons(self._evaluation, i, self._frame, self.objective)

    def to_dict(self, limit: int | None = 20) -> dict[str, Any]:
        """JSON-compatible: the question, the ranked rows (up to `limit`), exclusions with reasons, frontier,
        explanation, capacity plan, what-if and assumptions. Only the rows given are built."""
        rows = self._rows
        excluded = rows.excluded_order(limit)
        return {"constraints": self.constraints.texts(), "objective": self.objective.text(),
                "target_load": self.target_load, "cost_model": self.cost_model.to_dict(),
                "winner": self.winner, "ranked": _jsonables(rows.ranked_records(rows.ranked_order(limit))),
                "ranked_count": self.ranked_count, "excluded_count": self.excluded_count,
                "excluded": [dict(r, reasons=self._reasons(i))
                             for r, i in zip(_jsonables(rows.excluded_records(excluded)), excluded)],
                "pareto_axes": list(self.pareto_axes),
                "frontier": _jsonables(rows.ranked_records(rows.frontier_order(*self.pareto_axes)[:limit])),
                "explanation": self.explanation.to_dict(), "capacity": self.capacity,
                "what_if": None if self.what_if is None else _jsonables(self.what_if.to_dict("records")),
                "assumptions": self.assumptions}


def _jsonables(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in rows]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Numpy scalars to Python; NaN (unknown) and infinity (an unbounded CI side) to None."""
    out = {}
    for key, value in row.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    return out


def cost_model_for(catalog: Catalog | None, **overrides: Any) -> CostModel:
    """The cost model: the catalogue's defaults (tariff, utilisation), then `overrides` that are not None."""
    base = {}
    if catalog is not None:
        defaults = catalog.defaults
        base = {k: getattr(defaults, k) for k in ("tariff_usd_per_kwh", "utilisation")
                if getattr(defaults, k) is not None}
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return CostModel(**base)
    except ValidationError as exc:
        problems = (f"{'.'.join(map(str, e['loc']))} {e['input']!r}: {e['msg']}" for e in exc.errors())
        raise EngineError("cost model: " + "; ".join(problems)) from None


def recommend(candidates: pd.DataFrame, constraints: Constraints, objective: str | Objective = "cost",
              catalog: Catalog | None = None, target_load: float | None = None, *, cost: CostModel | None = None,
              pareto: tuple[str, str] | None = None, what_if: bool = False, include_uncertain: bool = False,
              meets_at: float = 0.95, fails_at: float = 0.05) -> Recommendation:
    """Rank the candidates that meet `constraints` by `objective` (see the module doc).

    `candidates`: engine.candidates.load's frame, or from_records' (CANDIDATE_COLUMNS). `catalog` prices and
    powers the systems; `cost` overrides its defaults (cost_model_for). `target_load` (inferences/s)
    turns on capacity planning: cost and power are then those of the whole plan. A candidate is ranked
    when every bound's verdict is "meets" (P >= meets_at), or also "uncertain" with include_uncertain.
    """
    objective = parse_objective(_cost_objective(objective, candidates))
    _check_request(candidates, constraints, objective, target_load, meets_at, fails_at)
    model = cost or cost_model_for(catalog)
    options = Options(meets_at=meets_at, fails_at=fails_at, include_uncertain=include_uncertain)
    prices = price_columns(candidates, catalog)
    ev = evaluate(candidates, constraints.bounds, objective, prices, model, target_load, options)
    _check_prices(candidates, constraints, objective, ev, catalog)
    rows = Rows(candidates, ev, prices, objective)
    return Recommendation(
        pareto_axes=_pareto_axes(pareto, objective), explanation=explain(ev, candidates, objective, options),
        capacity=_capacity(rows.first, target_load, model),
        what_if=run_what_if(candidates, constraints, objective, prices, model, target_load, options, ev)
        if what_if else None,
        constraints=constraints, objective=objective, target_load=target_load, cost_model=model,
        assumptions=_assumptions(candidates, ev.eligible, catalog, model, target_load, options),
        _evaluation=ev, _frame=candidates, _rows=rows)


def _cost_objective(objective: str | Objective, frame: pd.DataFrame) -> str | Objective:
    """'cost' means cost per million tokens where every candidate generates tokens (a generative task)."""
    tokens = frame["tokens_per_s"].to_numpy(dtype=float) if "tokens_per_s" in frame else np.empty(0)
    generative = tokens.size > 0 and bool(np.isfinite(tokens).all())
    return "cost_per_million_tokens" if isinstance(objective, str) and objective.strip().lower() == "cost" \
        and generative else objective


def _check_request(frame: pd.DataFrame, constraints: Constraints, objective: Objective, target_load: float | None,
                   meets_at: float, fails_at: float) -> None:
    missing = [c for c in CANDIDATE_COLUMNS if c not in frame]
    if missing:
        raise EngineError(f"the candidates frame lacks column(s) {', '.join(missing[:8])}"
                          f"{', ...' if len(missing) > 8 else ''}: build it with engine.candidates.load or "
                          f"from_records")
    if frame.empty:
        raise EngineError("there are no candidates to recommend from")
    if target_load is not None and not (math.isfinite(target_load) and target_load > 0):
        raise EngineError(f"target load must be a positive number of inferences per second, not {target_load}")
    if target_load is None and any(b.metric == "units" for b in constraints):
        raise EngineError("a bound on units needs a target load (units needed to serve it)")
    scenarios = [str(s) for s in pd.unique(frame["scenario"]) if str(s)]
    if len(scenarios) == 1:
        check_scenario(scenarios[0], constraints.bounds, objective, target_load)
    if not 0.5 < meets_at < 1 or not 0 < fails_at < 0.5:
        raise EngineError(f"verdict thresholds must satisfy 0.5 < meets_at < 1 and 0 < fails_at < 0.5, "
                          f"not {meets_at} and {fails_at}")


def _check_prices(frame: pd.DataFrame, constraints: Constraints, objective: Objective, ev: Evaluation,
                  catalog: Catalog | None) -> None:
    """A cost objective or bound with no priced candidate at all is a question that cannot be answered."""
    asked = [n for n in objective.weights if n in _COST_METRICS] + [b.text() for b in constraints
                                                                   if b.metric in _COST_METRICS]
    if asked and not np.isfinite(ev.unit_cost_per_hour_usd).any():
        systems = sorted(set(frame["system"]))
        where = f"in the catalogue {catalog.source}" if catalog is not None and catalog.source else \
            "(no catalogue was given)"
        raise EngineError(f"{', '.join(asked)} needs prices, and none of the {len(systems)} systems has one "
                          f"{where} or its system card: add price_per_hour_usd or purchase_price_usd for "
                          f"{', '.join(repr(s) for s in systems[:6])}{', ...' if len(systems) > 6 else ''}")


def _pareto_axes(pareto: tuple[str, str] | None, objective: Objective) -> tuple[str, str]:
    """The frontier's two metrics: as asked, else the objective against p99 latency (or throughput)."""
    if pareto is not None:
        if len(pareto) != 2:
            raise EngineError(f"a Pareto frontier takes two metrics, not {len(pareto)}")
        return metric(pareto[0]).name, metric(pareto[1]).name
    first = objective.metric.name if not objective.is_mix else "cost_per_million"
    return (first, "p99") if METRICS[first].unit != "ms" else (first, "throughput")


def _capacity(row: dict[str, Any] | None, target_load: float | None, model: CostModel) -> dict[str, Any] | None:
    """The winner's plan (`row`: the first ranked row): units (with the range its throughput CI gives),
    cost, purchase and power totals."""
    if target_load is None or row is None:
        return None
    plan = {"candidate": row["candidate"], "target_load_per_s": target_load, "headroom": model.headroom,
            "n_plus_one": model.n_plus_one, "unit_samples_per_s": row["samples_per_s"],
            "capacity_basis": row.get("capacity_basis") or "",
            "units": row["units"], "units_lo": row["units_lo"], "units_hi": row["units_hi"],
            "cost_per_hour_usd": row["cost_per_hour_usd"], "cost_per_million_usd": row["cost_per_million_usd"],
            "cost_per_million_tokens_usd": row["cost_per_million_tokens_usd"],
            "purchase_usd": row["plan_purchase_usd"], "power_w": row["power_total_w"],
            "price_source": row["price_source"]}
    return _jsonable(plan)


def _assumptions(frame: pd.DataFrame, ranked: np.ndarray, catalog: Catalog | None, model: CostModel,
                 target_load: float | None,
                 options: Options) -> list[str]:
    out = [(f"A bound is met when P(meets) >= {options.meets_at:g}, failed when P <= {options.fails_at:g}, "
            f"uncertain between (P from each figure's {options.confidence:.0%} CI, split-normal); candidates whose "
            f"objective CIs overlap share a rank.")]
    if catalog is not None and catalog.is_example:
        out.append(f"Prices and power from {catalog.source or 'the catalogue'}: its figures are EXAMPLES, not "
                   f"quotes; pass your own catalogue for a real decision.")
    tariff = f"energy at {model.tariff_usd_per_kwh:g} USD/kWh for owned systems" if model.tariff_usd_per_kwh \
        else "energy not costed (no tariff)"
    out.append(f"Cost: utilisation {model.utilisation:.0%} of paid hours; {tariff}; purchase prices amortised "
               f"linearly over their lifetime.")
    if target_load is not None:
        out.append(f"Capacity: {target_load:,.6g} inferences/s x (1 + {model.headroom:.0%} headroom)"
                   f"{', plus one spare unit (N+1)' if model.n_plus_one else ''}; cost and power are the plan's.")
    if (ranked & (frame["provenance"] == "imported").to_numpy(dtype=bool)).any():
        out.append("Imported MLPerf figures are point estimates (MLPerf publishes no per-query records); Server "
                   "throughput is the QPS at the benchmark's own latency bound.")
    if (ranked & frame["quick"].to_numpy(dtype=bool)).any():
        out.append("Some ranked candidates come from quick (non-compliant) runs.")
    return out
