"""What-if sensitivity: the recommendation again with one bound, price, tariff or load moved.

Each bound is moved by -50%, -10%, +10%, +50% of itself, within the values it can take (an accuracy
ratio stops at 1; a move that would repeat another is left out); so is the price (hourly and purchase) of
each of the leading systems (the winner's and the next distinct systems in rank order), the
electricity tariff where one is set, and the target load where one is given. Every row says the
winner it gives and whether that differs from the answer as asked. A move that makes the bounds
contradictory or invalid is reported as such rather than evaluated.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import pandas as pd

from engine._evaluate import Evaluation, Options, evaluate
from engine.constraints import Constraints, Objective
from engine.cost import CostModel
from runner.errors import EngineError

__all__ = ["FACTORS", "what_if"]

FACTORS = (0.5, 0.9, 1.1, 1.5)
COLUMNS = ["parameter", "change", "value", "winner", "winner_changed", "ranked"]


def what_if(frame: pd.DataFrame, constraints: Constraints, objective: Objective, prices: dict[str, np.ndarray],
            model: CostModel, target_load: float | None, options: Options, base: Evaluation,
            systems: int = 3) -> pd.DataFrame:
    """One row per moved parameter (COLUMNS); see the module doc."""
    labels = frame["candidate"]
    base_winner = base.winner()
    base_label = None if base_winner is None else str(labels.iloc[base_winner])
    asked = {"bounds": constraints, "prices": prices, "model": model, "load": target_load}
    rows = []
    for parameter, factor, value, changes in _moves(frame, constraints, prices, model, target_load, base, systems):
        moved = {**asked, **changes}
        try:
            bounds = moved["bounds"]() if callable(moved["bounds"]) else moved["bounds"]
            ev = evaluate(frame, bounds.bounds, objective, moved["prices"], moved["model"], moved["load"], options)
        except EngineError as exc:
            rows.append([parameter, f"{factor - 1:+.0%}", value, f"(not evaluated: {exc})", False, 0])
            continue
        winner = ev.winner()
        label = None if winner is None else str(labels.iloc[winner])
        rows.append([parameter, f"{factor - 1:+.0%}", value, label or "(none)", label != base_label,
                     int(ev.eligible.sum())])
    return pd.DataFrame(rows, columns=COLUMNS)


def _moves(frame: pd.DataFrame, constraints: Constraints, prices: dict[str, np.ndarray], model: CostModel,
           target_load: float | None, base: Evaluation, systems: int) -> Iterator[tuple[str, float, float, dict]]:
    """(parameter, factor, new value, what changes) for every move; a moved bound is built when evaluated,
    as moving it may make the bounds contradictory."""
    for j, bound in enumerate(constraints.bounds):
        tried = set()
        for factor in FACTORS:
            value = _possible(bound.metric, bound.value * factor)
            if value in tried or value == bound.value:
                continue
            tried.add(value)
            yield bound.text(), value / bound.value, value, {
                "bounds": functools.partial(constraints.with_value, j, value)}
    for system in _leading_systems(frame, base, systems):
        for factor in FACTORS:
            yield f"price of {system} (factor)", factor, factor, {"prices": _scaled(frame, prices, system, factor)}
    if model.tariff_usd_per_kwh:
        for factor in FACTORS:
            tariff = model.tariff_usd_per_kwh * factor
            yield "tariff_usd_per_kwh", factor, tariff, {
                "model": model.model_copy(update={"tariff_usd_per_kwh": tariff})}
    if target_load:
        for factor in FACTORS:
            yield "target load (inferences/s)", factor, target_load * factor, {"load": target_load * factor}


def _possible(metric: str, value: float) -> float:
    """A moved bound kept within the values its metric can take: an accuracy ratio never above 1."""
    return min(value, 1.0) if metric == "accuracy_ratio" else value


def _leading_systems(frame: pd.DataFrame, base: Evaluation, count: int) -> list[str]:
    """The systems of the best-ranked candidates, distinct, best first."""
    systems = frame["system"].take(base.ordered[:1000])
    return list(dict.fromkeys(systems))[:count]


def _scaled(frame: pd.DataFrame, prices: dict[str, np.ndarray], system: str, factor: float) -> dict[str, np.ndarray]:
    """Prices with one system's hourly and purchase price multiplied by `factor`."""
    rows = (frame["system"] == system).to_numpy(dtype=bool)
    out = dict(prices)
    for key in ("price_per_hour_usd", "purchase_price_usd"):
        out[key] = np.where(rows, prices[key] * factor, prices[key])
    return out
