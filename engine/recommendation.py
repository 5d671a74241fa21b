"""`recommend`: the one entry point the CLI, the Streamlit app and reports call.

    rec = recommend(candidates, constraints, "cost", catalog, target_load=20000)
    rec.ranked        # eligible candidates, best first: rank (ties share one), P per bound, cost, capacity
    rec.excluded      # the others, with the bound each fails worst and by how much
    rec.frontier      # Pareto frontier of the ranked candidates over two metrics
    rec.explanation   # winner, binding constraint, ties, nearest misses and what to relax
    rec.capacity      # the winner's capacity plan for the target load
    rec.what_if       # sensitivity to bounds, prices, tariff and load (with what_if=True)
    rec.to_dict()     # all of it as JSON-compatible data

Everything runs vectorised over the candidates frame (engine._evaluate), no per-candidate Python; the
issue asks for < 100 ms (p95) at 100,000 candidates, which benchmarks/bench_engine.py measures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from engine._evaluate import NO_OBJECTIVE, STATUSES, Evaluation, Options, evaluate
from engine._figures import FIGURES
from engine.candidates import CANDIDATE_COLUMNS
from engine.catalog import Catalog, price_columns
from engine.constraints import METRICS, Constraints, Objective, check_scenario, metric, parse_objective
from engine.cost import CostModel
from engine.explain import Explanation, excluded_reasons, explain
from engine.pareto import frontier
from engine.ranking import UNKNOWN
from engine.whatif import what_if as run_what_if
from runner.errors import EngineError

__all__ = ["Recommendation", "recommend", "cost_model_for"]

_COST_METRICS = ("cost_per_million", "cost_per_million_tokens", "cost_per_hour", "throughput_per_usd")
_DERIVED = ("cost_per_hour_usd", "cost_per_million_usd", "cost_per_million_tokens_usd", "units", "power_total_w",
            "plan_purchase_usd",
            "throughput_per_usd", "throughput_per_watt")
_IDENTITY = ["candidate", "system", "system_id", "backend", "settings", "model_variant", "task", "scenario",
             "accelerator", "accelerators", "provenance", "source", "submitter", "run_ids", "n_runs", "compliant",
             "quick", "ci_source", "accuracy_metric", "accuracy_reference", "capacity_basis"]
_EXCLUDED_IDENTITY = ["candidate", "system", "system_id", "backend", "settings", "model_variant", "provenance",
                      "source", "submitter", "run_ids", "n_runs"]
_PRICES = ("price_per_hour_usd", "purchase_price_usd", "lifetime_years", "price_source", "price_example",
           "power_source")
_LABELS = ("price_source", "price_example", "power_source")
# figures the ranked table always gives with CI columns (for the capacity plan and the cost)
_ALWAYS_CI = ("samples_per_s", "cost_per_million_usd", "cost_per_hour_usd", "units")


@dataclass(frozen=True)
class Recommendation:
    """A ranked, explained answer (see the module doc), frozen once made; `why_excluded(candidate)` explains one
    exclusion."""

    ranked: pd.DataFrame
    excluded: pd.DataFrame
    frontier: pd.DataFrame
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

    @property
    def winner(self) -> dict[str, Any] | None:
        """The first ranked row as a dict, None when no candidate is ranked."""
        return None if self.ranked.empty else _jsonable(self.ranked.iloc[0].to_dict())

    def why_excluded(self, candidate: str) -> list[str]:
        """The reasons one candidate is not ranked (empty for a ranked one); KeyError for an unknown name."""
        found = np.flatnonzero((self._frame["candidate"] == candidate).to_numpy())
        if not found.size:
            raise KeyError(f"no candidate {candidate!r}")
        i = int(found[0])
        if self._evaluation.eligible[i]:
            return []
        return excluded_reasons(self._evaluation, i, self._frame, self.objective)

    def to_dict(self, limit: int | None = 20) -> dict[str, Any]:
        """JSON-compatible: the question, the ranked rows (up to `limit`), exclusions with reasons, frontier,
        explanation, capacity plan, what-if and assumptions."""
        def head(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [_jsonable(r) for r in (df if limit is None else df.head(limit)).to_dict("records")]

        excluded = [dict(r, reasons=self.why_excluded(r["candidate"])) for r in head(self.excluded)]
        return {"constraints": self.constraints.texts(), "objective": self.objective.text(),
                "target_load": self.target_load, "cost_model": self.cost_model.to_dict(),
                "winner": self.winner, "ranked": head(self.ranked),
                "ranked_count": len(self.ranked), "excluded_count": len(self.excluded), "excluded": excluded,
                "pareto_axes": list(self.pareto_axes),
                "frontier": head(self.frontier),
                "explanation": self.explanation.to_dict(), "capacity": self.capacity,
                "what_if": None if self.what_if is None else [_jsonable(r) for r in self.what_if.to_dict("records")],
                "assumptions": self.assumptions}


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
    ranked, excluded = _tables(candidates, ev, prices, objective)
    axes = _pareto_axes(pareto, objective)
    return Recommendation(
        ranked=ranked, excluded=excluded, frontier=frontier(ranked, *axes), pareto_axes=axes,
        explanation=explain(ev, candidates, objective, options), capacity=_capacity(ranked, target_load, model),
        what_if=run_what_if(candidates, constraints, objective, prices, model, target_load, options, ev)
        if what_if else None,
        constraints=constraints, objective=objective, target_load=target_load, cost_model=model,
        assumptions=_assumptions(ranked, catalog, model, target_load, options),
        _evaluation=ev, _frame=candidates)


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


def _tables(frame: pd.DataFrame, ev: Evaluation, prices: dict[str, Any],
            objective: Objective) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ranked, excluded). Ranked, best first: identity, rank and tie, objective with CI, P per bound and
    overall, every figure and derived cost, prices and their sources; CI columns (`_lo`/`_hi`) for the
    figures the bounds and objective name and for throughput, cost and units (the others' CIs are in the
    candidates frame). Excluded, nearest first: identity, status, the bound each fails worst and by how
    much, P per bound, and only the figures the bounds and objective name."""
    named = {METRICS[b.metric].column for b in ev.bounds} | {METRICS[n].column for n in objective.weights}
    with_ci = named | set(_ALWAYS_CI)
    numbers: dict[str, Any] = {"rank": ev.rank, "objective": ev.objective[0], "objective_lo": ev.objective[1],
                               "objective_hi": ev.objective[2],
                               "p_all": np.prod(ev.p, axis=0) if len(ev.p) else np.ones(len(frame))}
    numbers.update({name: ev.p[j] for j, name in enumerate(_bound_columns(ev))})
    for column in (*FIGURES, *_DERIVED):
        names = (column, f"{column}_lo", f"{column}_hi") if column in with_ci else (column,)
        numbers.update(zip(names, ev.values[column]))
    numbers.update({k: prices[k] for k in _PRICES if k not in _LABELS},
                   unit_cost_per_hour_usd=ev.unit_cost_per_hour_usd)
    labels = {k: prices[k] for k in _LABELS}
    labels.update(status=pd.Categorical.from_codes(ev.status, STATUSES), tied=_tied(ev))
    ranked = _rows(frame, ev.ordered, _IDENTITY, numbers, labels)
    ranked["rank"] = ranked["rank"].astype(np.int64)
    excluded_rows, failed = _excluded_order(ev)
    keep = [k for k in numbers if k.removesuffix("_lo").removesuffix("_hi") in named or k.startswith("p_")
            or k in ("objective", "cost_per_million_usd", "unit_cost_per_hour_usd")]
    excluded = _rows(frame, excluded_rows, _EXCLUDED_IDENTITY, {k: numbers[k] for k in keep},
                     {"status": labels["status"]})
    return ranked, pd.concat([excluded, failed], axis=1)


def _rows(frame: pd.DataFrame, rows: np.ndarray, identity: list[str], numbers: dict[str, np.ndarray],
          labels: dict[str, Any]) -> pd.DataFrame:
    """The candidates at `rows`: identity columns, float columns, then labels (categoricals, booleans)."""
    identity = frame[[c for c in identity if c in frame]].take(rows).reset_index(drop=True)
    taken = {k: v.take(rows) if isinstance(v, pd.Categorical) else np.asarray(v)[rows] for k, v in labels.items()}
    return pd.concat([identity, _gather(numbers, rows), pd.DataFrame(taken)], axis=1)


def _gather(columns: dict[str, np.ndarray], rows: np.ndarray) -> pd.DataFrame:
    """Float columns taken at `rows` into one 2-D block (one allocation, no copy when framed)."""
    block = np.empty((len(columns), len(rows)))
    for j, values in enumerate(columns.values()):
        np.take(np.asarray(values, dtype=float), rows, out=block[j])
    return pd.DataFrame(block.T, columns=list(columns), copy=False)


def _tied(ev: Evaluation) -> np.ndarray:
    """Whether each ranked candidate shares its rank with another."""
    if not ev.eligible.any():
        return np.zeros(len(ev.rank), dtype=bool)
    ranks = np.nan_to_num(ev.rank).astype(np.int64)
    counts = np.bincount(ranks[ev.eligible])
    return ev.eligible & (counts[ranks] > 1)


def _bound_columns(ev: Evaluation) -> list[str]:
    """'p_max_p99', 'p_min_accuracy_ratio', ... (a second bound on one metric gets '_2')."""
    names: list[str] = []
    for bound in ev.bounds:
        name = f"p_{bound.name}"
        names.append(name if name not in names else f"{name}_{len(names) + 1}")
    return names


def _excluded_order(ev: Evaluation) -> tuple[np.ndarray, pd.DataFrame]:
    """The rows not ranked, nearest first (smallest worst relative shortfall), and for each the bound it
    fails worst (`failed`), by how much (`shortfall` in the bound's unit, `shortfall_rel`)."""
    idx = np.flatnonzero(~ev.eligible)
    no_objective = ev.status[idx] == NO_OBJECTIVE
    if not len(ev.bounds):
        failed = pd.Categorical(["no objective figure"] * len(idx))
        return idx, pd.DataFrame({"failed": failed, "shortfall": np.nan, "shortfall_rel": np.nan})
    absolute, relative = (m[:, idx] for m in ev.shortfalls)
    verdict = ev.verdict[:, idx]
    score = np.where(verdict != 0, relative, -np.inf)
    score[verdict == UNKNOWN] = np.inf
    worst = np.argmax(score, axis=0)
    columns = np.arange(len(idx))
    order = _stable_order(score[worst, columns])
    worst, columns, no_objective = worst[order], order, no_objective[order]
    texts = [b.text() for b in ev.bounds] + ["no objective figure"]
    names = list(dict.fromkeys(texts))  # two equal bounds share one category
    codes = np.array([names.index(text) for text in texts])[np.where(no_objective, len(ev.bounds), worst)]
    return idx[order], pd.DataFrame({
        "failed": pd.Categorical.from_codes(codes, names),
        "shortfall": np.where(no_objective, np.nan, absolute[worst, columns]),
        "shortfall_rel": np.where(no_objective, np.nan, relative[worst, columns])})


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """np.argsort(keys, kind="stable") (equal keys keep their order), faster: quicksort on unique int keys."""
    _, codes = np.unique(keys, return_inverse=True)
    return np.argsort(codes.astype(np.int64) * len(keys) + np.arange(len(keys)))


def _pareto_axes(pareto: tuple[str, str] | None, objective: Objective) -> tuple[str, str]:
    """The frontier's two metrics: as asked, else the objective against p99 latency (or throughput)."""
    if pareto is not None:
        if len(pareto) != 2:
            raise EngineError(f"a Pareto frontier takes two metrics, not {len(pareto)}")
        return metric(pareto[0]).name, metric(pareto[1]).name
    first = objective.metric.name if not objective.is_mix else "cost_per_million"
    return (first, "p99") if METRICS[first].unit != "ms" else (first, "throughput")


def _capacity(ranked: pd.DataFrame, target_load: float | None, model: CostModel) -> dict[str, Any] | None:
    """The winner's plan: units (with the range its throughput CI gives), cost, purchase and power totals."""
    if target_load is None or ranked.empty:
        return None
    row = ranked.iloc[0]
    plan = {"candidate": row["candidate"], "target_load_per_s": target_load, "headroom": model.headroom,
            "n_plus_one": model.n_plus_one, "unit_samples_per_s": row["samples_per_s"],
            "capacity_basis": row.get("capacity_basis") or "",
            "units": row["units"], "units_lo": row["units_lo"], "units_hi": row["units_hi"],
            "cost_per_hour_usd": row["cost_per_hour_usd"], "cost_per_million_usd": row["cost_per_million_usd"],
            "cost_per_million_tokens_usd": row["cost_per_million_tokens_usd"],
            "purchase_usd": row["plan_purchase_usd"], "power_w": row["power_total_w"],
            "price_source": row["price_source"]}
    return _jsonable(plan)


def _assumptions(ranked: pd.DataFrame, catalog: Catalog | None, model: CostModel, target_load: float | None,
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
    if not ranked.empty and (ranked["provenance"] == "imported").any():
        out.append("Imported MLPerf figures are point estimates (MLPerf publishes no per-query records); Server "
                   "throughput is the QPS at the benchmark's own latency bound.")
    if not ranked.empty and ranked["quick"].any():
        out.append("Some ranked candidates come from quick (non-compliant) runs.")
    return out
