"""The vectorised core of a recommendation: figures, costs, P(meets) per bound, status, objective and ranks.

`evaluate` is pure numpy over the candidates' columns (no per-row Python): engine.recommendation builds its
answer from the result, and engine.whatif calls it again with a bound, price or load moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from engine import cost as cost_model
from engine._figures import FIGURES
from engine.constraints import METRICS, Bound, Objective
from engine.ranking import FAILS, MEETS, UNCERTAIN, UNKNOWN, p_meets, p_meets_draws, rank_with_ties, verdicts

__all__ = ["Options", "Evaluation", "evaluate", "STATUSES", "NO_OBJECTIVE"]

# candidate status codes: VERDICTS' four, plus "meets every bound but has no objective figure"
NO_OBJECTIVE = 4
STATUSES = np.array(["meets", "uncertain", "fails", "unknown", "no objective figure"], dtype=object)
Triple = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Options:
    """How to judge: verdict thresholds, CI confidence, whether uncertain candidates are ranked."""

    meets_at: float = 0.95
    fails_at: float = 0.05
    confidence: float = 0.95
    include_uncertain: bool = False


@dataclass
class Evaluation:
    """Per-candidate arrays: metric values (value, lo, hi) by column, P and verdict per bound, status,
    objective (value, lo, hi in the objective's own direction), loss (to minimise) and rank."""

    values: dict[str, Triple]
    bounds: tuple[Bound, ...]
    p: np.ndarray             # (k, n) P(candidate i meets bound j) at [j, i]
    verdict: np.ndarray       # (k, n) codes into ranking.VERDICTS
    status: np.ndarray        # (n,) codes into STATUSES
    objective: Triple
    loss: np.ndarray
    eligible: np.ndarray      # (n,) bool: ranked
    rank: np.ndarray          # (n,) float, NaN where not ranked
    unit_cost_per_hour_usd: np.ndarray

    @cached_property
    def shortfalls(self) -> tuple[np.ndarray, np.ndarray]:
        """(absolute, relative) shortfall of every candidate on every bound, shape (k, n), in the bound's unit
        and as a fraction of the bound; negative = slack left."""
        n, k = len(self.status), len(self.bounds)
        absolute, relative = np.empty((k, n)), np.empty((k, n))
        for j, bound in enumerate(self.bounds):
            value = self.values[METRICS[bound.metric].column][0]
            absolute[j] = value - bound.value if bound.upper else bound.value - value
            relative[j] = absolute[j] / bound.value
        return absolute, relative

    @cached_property
    def ordered(self) -> np.ndarray:
        """Indices of the ranked candidates, best first (rank, then loss, then position)."""
        idx = np.flatnonzero(self.eligible)
        return idx[np.lexsort((self.loss[idx], self.rank[idx]))]

    def winner(self) -> int | None:
        """Index of the best-ranked candidate: the best estimate (always of rank 1); None when none is ranked."""
        if not self.eligible.any():
            return None
        return int(np.argmin(np.where(self.eligible, self.loss, np.inf)))


def _triple(frame: pd.DataFrame, column: str) -> Triple:
    value = frame[column].to_numpy(dtype=float) if column in frame else np.full(len(frame), np.nan)
    lo = frame[f"{column}_lo"].to_numpy(dtype=float) if f"{column}_lo" in frame else value
    hi = frame[f"{column}_hi"].to_numpy(dtype=float) if f"{column}_hi" in frame else value
    return value, lo, hi


def evaluate(frame: pd.DataFrame, bounds: tuple[Bound, ...], objective: Objective, prices: dict[str, np.ndarray],
             model: cost_model.CostModel, target_load: float | None, options: Options) -> Evaluation:
    """Judge every candidate against every bound and rank the eligible ones by the objective."""
    values = {c: _triple(frame, c) for c in FIGURES if c != "power_w"}
    power = (prices["power_w"], prices["power_w_lo"], prices["power_w_hi"])
    values["power_w"] = power
    derived = cost_model.derive(values["samples_per_s"], power, prices["price_per_hour_usd"],
                                prices["purchase_price_usd"], prices["lifetime_years"], model, target_load,
                                values["tokens_per_s"])
    values.update(derived.columns)
    n, k = len(frame), len(bounds)
    p = np.empty((k, n))
    for j, bound in enumerate(bounds):
        column = METRICS[bound.metric].column
        p[j] = p_meets(*values[column], bound.value, bound.upper, options.confidence)
        if f"{column}_boot" in frame:
            draws = p_meets_draws(list(frame[f"{column}_boot"]), bound.value, bound.upper)
            p[j] = np.where(np.isnan(draws), p[j], draws)
    verdict = verdicts(p, options.meets_at, options.fails_at) if k else np.zeros((0, n), dtype=np.int8)
    status = _status(verdict, n)
    allowed = (status == MEETS) | (options.include_uncertain & (status == UNCERTAIN))
    objective_triple, loss, loss_lo, loss_hi = _objective(objective, values, allowed)
    status = np.where(allowed & ~np.isfinite(loss), NO_OBJECTIVE, status)
    eligible = allowed & np.isfinite(loss)
    rank = np.full(n, np.nan)
    if eligible.any():
        rank[eligible] = rank_with_ties(loss[eligible], loss_lo[eligible], loss_hi[eligible])
    return Evaluation(values, tuple(bounds), p, verdict, status, objective_triple, loss, eligible, rank,
                      derived.unit_cost_per_hour_usd)


# verdict code -> severity (meets < uncertain < unknown < fails), and back
_SEVERITY = np.array([0, 1, 3, 2], dtype=np.int8)
_FROM_SEVERITY = np.array([MEETS, UNCERTAIN, UNKNOWN, FAILS], dtype=np.int8)


def _status(verdict: np.ndarray, n: int) -> np.ndarray:
    """A candidate's status: fails if any bound fails, else unknown if a figure is missing, else
    uncertain if any bound is, else meets."""
    if verdict.shape[0] == 0:
        return np.zeros(n, dtype=np.int8)
    severity = _SEVERITY[verdict[0]]
    for row in verdict[1:]:
        np.maximum(severity, _SEVERITY[row], out=severity)
    return _FROM_SEVERITY[severity]


def _objective(objective: Objective, values: dict[str, Triple], allowed: np.ndarray):
    """(objective value, lo, hi), and the loss to minimise with its bounds. A mix is the weighted sum of
    each metric scaled to [0, 1] over the allowed candidates (1 = best), bounds mapped the same way."""
    if not objective.is_mix:
        m = objective.metric
        value, lo, hi = _filled(values[m.column])
        if m.better == "lower":
            return (value, lo, hi), value, lo, hi
        return (value, lo, hi), -value, -hi, -lo
    total = np.zeros(len(allowed))
    total_lo, total_hi = total.copy(), total.copy()
    for name, weight in objective.weights.items():
        m = METRICS[name]
        value, lo, hi = _filled(values[m.column])
        score, s_a, s_b = _scores((value, lo, hi), value[allowed & np.isfinite(value)], m.better == "higher")
        total = total + weight * score
        total_lo = total_lo + weight * np.minimum(s_a, s_b)
        total_hi = total_hi + weight * np.maximum(s_a, s_b)
    return (total, total_lo, total_hi), -total, -total_hi, -total_lo


def _filled(triple: Triple) -> Triple:
    """A figure with missing CI bounds replaced by the estimate."""
    value, lo, hi = triple
    return value, np.where(np.isnan(lo), value, lo), np.where(np.isnan(hi), value, hi)


def _scores(triple: Triple, pool: np.ndarray, higher_is_better: bool) -> Triple:
    """Each array scaled linearly so the pool's worst is 0 and its best 1 (all 1 when the pool is flat)."""
    if pool.size == 0:
        return tuple(np.full_like(x, np.nan) for x in triple)
    best, worst = (pool.max(), pool.min()) if higher_is_better else (pool.min(), pool.max())
    if best == worst:
        return tuple(np.where(np.isfinite(x), 1.0, np.nan) for x in triple)
    return tuple((x - worst) / (best - worst) for x in triple)
