"""Explanations: what binds the winner, why each excluded candidate failed, and what to relax when none fits.

Shortfalls are in the bound's unit and relative to the bound: for `p99 <= 15 ms` a candidate at
18 ms falls short by 3 ms (+20%); slack is the same measured the other way (positive = room left).
"What to relax" uses the loosest bound each candidate would meet with P >= the verdict threshold
(ranking.required_bound), so it accounts for the figures' CIs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine._evaluate import NO_OBJECTIVE, STATUSES, Evaluation, Options
from engine.constraints import METRICS, Bound, Objective
from engine.ranking import FAILS, UNKNOWN, VERDICTS, required_bound

__all__ = ["Explanation", "explain", "excluded_reasons", "describe_value"]

_NAMES = 50  # candidates named in a list (tied with the winner)


@dataclass
class Explanation:
    """Why the answer is what it is, as data (for the app and JSON) and as sentences (`lines`)."""

    winner: str | None = None
    binding: dict[str, Any] | None = None
    tied_count: int = 0
    tied_with: list[str] = field(default_factory=list)  # the first _NAMES of them, best estimate first
    excluded_by: dict[str, int] = field(default_factory=dict)
    nearest_misses: list[dict[str, Any]] = field(default_factory=list)
    relax: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict."""
        return {"winner": self.winner, "binding": self.binding, "tied_count": self.tied_count,
                "tied_with": self.tied_with,
                "excluded_by": self.excluded_by, "nearest_misses": self.nearest_misses, "relax": self.relax,
                "lines": self.lines}


def describe_value(value: float, bound: Bound) -> str:
    """A figure in the bound's unit: '18.2 ms'."""
    unit = METRICS[bound.metric].unit
    unit = "" if unit in ("", "ratio", "units") else f" {unit}"
    return f"{value:.4g}{unit}"


def _needed(ev: Evaluation, options: Options) -> np.ndarray:
    """Relative relaxation of each bound each candidate needs to meet it, shape (k, n) (<= 0: none; inf: the
    figure is unknown)."""
    out = np.empty((len(ev.bounds), len(ev.status)))
    for j, bound in enumerate(ev.bounds):
        value, lo, hi = ev.values[METRICS[bound.metric].column]
        loosest = required_bound(value, lo, hi, bound.upper, options.meets_at, options.confidence)
        rel = (loosest - bound.value) / bound.value if bound.upper else (bound.value - loosest) / bound.value
        out[j] = np.where(np.isnan(value), np.inf, rel)
    return out


def excluded_reasons(ev: Evaluation, i: int, frame: pd.DataFrame, objective: Objective) -> list[str]:
    """Why candidate i is not ranked: each bound it fails (or cannot be checked against), by how much."""
    absolute, relative = ev.shortfalls
    out = []
    for j, bound in enumerate(ev.bounds):
        code = ev.verdict[j, i]
        if code == UNKNOWN:
            out.append(f"{bound.text()}: no {METRICS[bound.metric].label} figure")
        elif code != 0:
            value = ev.values[METRICS[bound.metric].column][0][i]
            head = f"{bound.text()}: {VERDICTS[code]} (P = {ev.p[j, i]:.2f}) at {describe_value(value, bound)}"
            if absolute[j, i] > 0:
                out.append(f"{head}, short by {describe_value(absolute[j, i], bound)} ({relative[j, i]:+.1%})")
            else:
                out.append(f"{head}: the estimate meets it by {describe_value(-absolute[j, i], bound)} "
                           f"({-relative[j, i]:.1%}) but its CI reaches past it")
    if ev.status[i] == NO_OBJECTIVE:
        out.append(_no_objective(frame, i, objective))
    return out


def _no_objective(frame: pd.DataFrame, i: int, objective: Objective) -> str:
    names = ", ".join(objective.weights)
    needs_price = any(n in ("cost_per_million", "cost_per_hour", "throughput_per_usd") for n in objective.weights)
    system = frame["system"].iloc[i]
    if needs_price:
        return (f"no {names} figure: system {system!r} has no price (add price_per_hour_usd or "
                f"purchase_price_usd to the catalogue; an owned system with a tariff also needs power_w or tdp_w)")
    if any(n in ("power", "throughput_per_watt") for n in objective.weights):
        return f"no {names} figure: system {system!r} has no power (measured, or power_w/tdp_w in the catalogue)"
    return f"no {names} figure for this candidate"


def explain(ev: Evaluation, frame: pd.DataFrame, objective: Objective, options: Options,
            limit: int = 3) -> Explanation:
    """The explanation of one evaluation (see the module doc)."""
    out = Explanation()
    labels = frame["candidate"]
    absolute, relative = ev.shortfalls
    out.excluded_by = {b.text(): int(np.count_nonzero((ev.verdict[j] != 0) & ~ev.eligible))
                       for j, b in enumerate(ev.bounds)}
    winner = ev.winner()
    if winner is not None:
        _explain_winner(out, ev, labels, winner, absolute, relative)
    else:
        _explain_none(out, ev, frame, objective, options, labels, limit)
    shown = ", ".join(f"{t} excludes {c}" for t, c in out.excluded_by.items() if c)
    if shown:
        out.lines.append(f"Of {len(labels)} candidates: {shown}.")
    return out


def _explain_winner(out: Explanation, ev: Evaluation, labels: pd.Series, winner: int, absolute: np.ndarray,
                    relative: np.ndarray) -> None:
    out.winner = str(labels.iloc[winner])
    tied = np.flatnonzero(ev.eligible & (ev.rank == ev.rank[winner]))
    tied = tied[tied != winner]
    out.tied_count = int(tied.size)
    out.tied_with = [str(s) for s in labels.take(tied[np.argsort(ev.loss[tied], kind="stable")][:_NAMES])]
    out.lines.append(f"Winner: {out.winner}.")
    if out.tied_count:
        out.lines.append(f"Tied with {out.tied_count} other(s) whose objective CIs overlap it (cannot be told "
                         f"apart): {', '.join(out.tied_with[:5])}{', ...' if out.tied_count > 5 else ''}.")
    if ev.bounds:
        j = int(np.argmax(relative[:, winner]))  # the smallest slack binds
        bound = ev.bounds[j]
        out.binding = {"bound": bound.text(), "value": float(ev.values[METRICS[bound.metric].column][0][winner]),
                       "slack": float(-absolute[j, winner]), "slack_rel": float(-relative[j, winner]),
                       "p_meets": float(ev.p[j, winner])}
        out.lines.append(f"Binding constraint: {bound.text()}: at {describe_value(out.binding['value'], bound)} the "
                         f"winner has {describe_value(-absolute[j, winner], bound)} ({-relative[j, winner]:.1%}) of "
                         f"slack left, the least of its bounds; P(meets) = {ev.p[j, winner]:.2f}.")


def _explain_none(out: Explanation, ev: Evaluation, frame: pd.DataFrame, objective: Objective, options: Options,
                  labels: pd.Series, limit: int) -> None:
    no_objective = np.flatnonzero(ev.status == NO_OBJECTIVE)
    if no_objective.size:
        systems = sorted(set(frame["system"].take(no_objective)))
        out.lines.append(f"No candidate can be ranked: {no_objective.size} meet every constraint but have no "
                         f"{objective.text()} figure (systems: {', '.join(systems[:8])}).")
        return
    out.lines.append("No candidate meets all constraints.")
    needed = _needed(ev, options)
    score = np.where(needed > 0, needed, 0.0).sum(axis=0)
    order = np.argsort(score, kind="stable")[:limit]
    for i in order[np.isfinite(score[order])]:
        changes = [_relaxation(ev.bounds[j], needed[j, i]) for j in range(len(ev.bounds)) if needed[j, i] > 0]
        out.nearest_misses.append({"candidate": str(labels.iloc[i]), "total_relaxation": float(score[i]),
                                   "relax": changes, "status": str(STATUSES[ev.status[i]])})
        out.lines.append(f"Nearest miss: {labels.iloc[i]}: relax " + "; ".join(
            f"{c['bound']} to {c['to_text']} ({c['by_rel']:+.1%})" for c in changes) + ".")
    for j, bound in enumerate(ev.bounds):
        others = np.delete(needed, j, axis=0) <= 0
        alone = np.flatnonzero(others.all(axis=0) & (needed[j] > 0) & np.isfinite(needed[j]))
        if alone.size:
            best = alone[np.argmin(needed[j, alone])]
            change = _relaxation(bound, needed[j, best])
            change.update(admits=int(alone.size), first=str(labels.iloc[best]))
            out.relax.append(change)
            out.lines.append(f"Relaxing only {bound.text()} to {change['to_text']} ({change['by_rel']:+.1%}) admits "
                             f"{labels.iloc[best]}.")
    if not out.relax and not out.nearest_misses:
        unknown = [(b, int((ev.verdict[j] == UNKNOWN).sum())) for j, b in enumerate(ev.bounds)]
        out.lines.append("No candidate has every figure the constraints ask about: " + "; ".join(
            f"{b.text()} cannot be checked for {count}" for b, count in unknown if count) + ".")
    elif ev.status.size and (ev.status == FAILS).all() and not out.relax:
        out.lines.append("No single bound can be relaxed alone to admit a candidate.")


def _relaxation(bound: Bound, rel: float) -> dict[str, Any]:
    """The bound moved by `rel` of itself in the loosening direction."""
    to = bound.value * (1 + rel) if bound.upper else bound.value * (1 - rel)
    return {"bound": bound.text(), "to": float(to), "to_text": describe_value(to, bound),
            "by_rel": float(rel if bound.upper else -rel)}
