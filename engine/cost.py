"""The cost model and capacity planning, vectorised over candidates (numpy arrays, NaN where unknown).

Cost of one unit per hour of service:
    hardware = price_per_hour_usd / utilisation                                  (rented)
             = purchase_price_usd / (lifetime_years x 8766 h x utilisation)     (owned, amortised linearly)
    energy   = power_w / 1000 x tariff_usd_per_kwh                               (owned only: a rental price
                                                                                  includes its power)
`utilisation` is the fraction of paid (or lifetime) hours the unit serves load; idle power is not
counted. An hourly price wins over a purchase price where both are known.
Cost per million inferences = cost per hour / (inferences per second x 3600) x 1e6; for generative tasks
cost per million tokens = cost per hour / (tokens per second x 3600) x 1e6 (at a target load, the tokens
per second the load brings: target x tokens per inference).

Capacity for a target load (inferences/s): units = ceil(target x (1 + headroom) / throughput), plus
one spare unit when `n_plus_one`; the plan costs units x the unit's cost per hour and draws units x
its power (every unit, the spare too, at its full figure: an upper estimate), and its cost per million
inferences is then taken at the target load (the spare and the headroom are paid for).
Uncertainty: throughput's CI gives the plan's bounds (units_lo from throughput_hi, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from runner.cards._base import StrictModel

__all__ = ["CostModel", "HOURS_PER_YEAR", "unit_cost_per_hour", "cost_per_million", "units_needed", "Derived",
           "derive"]

HOURS_PER_YEAR = 365.25 * 24


class CostModel(StrictModel):
    """Cost assumptions shared by every candidate (the catalogue's `defaults`, or options)."""

    tariff_usd_per_kwh: float | None = Field(default=None, ge=0, description="Electricity price, USD per kWh "
                                             "(None: energy is not costed).")
    utilisation: float = Field(default=1.0, gt=0, le=1, description="Fraction of paid hours a unit serves load.")
    headroom: float = Field(default=0.2, ge=0, le=10, description="Capacity kept spare above the target load "
                                                                 "(0.2 = 20%).")
    n_plus_one: bool = Field(default=True, description="Add one spare unit to every capacity plan.")


def unit_cost_per_hour(price_per_hour: np.ndarray, purchase_price: np.ndarray, lifetime_years: np.ndarray,
                       power_w: np.ndarray, model: CostModel) -> np.ndarray:
    """USD per hour of service of one unit (module doc); NaN without a price, or without the power an
    owned unit's energy cost needs when a tariff is set."""
    rented = np.isfinite(price_per_hour)
    with np.errstate(divide="ignore", invalid="ignore"):
        owned = purchase_price / (lifetime_years * HOURS_PER_YEAR)
        hardware = np.where(rented, price_per_hour, owned) / model.utilisation
        energy = power_w / 1000.0 * model.tariff_usd_per_kwh if model.tariff_usd_per_kwh else 0.0
    return hardware + np.where(rented, 0.0, energy)


def cost_per_million(cost_per_hour: np.ndarray, inferences_per_s: np.ndarray) -> np.ndarray:
    """USD per million inferences at a rate of `inferences_per_s`: infinite at rate 0 (a CI's lower bound
    may reach it), NaN where the rate is unknown or negative."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(inferences_per_s >= 0, inferences_per_s, np.nan)
        return cost_per_hour / (rate * 3600.0) * 1e6


def units_needed(target_load: float, throughput: np.ndarray, headroom: float, n_plus_one: bool) -> np.ndarray:
    """Units to serve `target_load` inferences/s with `headroom`, plus a spare (N+1); infinite at throughput 0,
    NaN where it is unknown."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(throughput >= 0, throughput, np.nan)
        units = np.ceil(np.round(target_load * (1.0 + headroom) / rate, 9))  # 2.0000000001 units is 2
    return units + (1.0 if n_plus_one else 0.0)


@dataclass(frozen=True)
class Derived:
    """Per-candidate cost, capacity and efficiency figures: {column: (value, lo, hi)} plus the unit cost."""

    columns: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    unit_cost_per_hour_usd: np.ndarray


def derive(throughput: tuple[np.ndarray, np.ndarray, np.ndarray], power: tuple[np.ndarray, np.ndarray, np.ndarray],
           price_per_hour: np.ndarray, purchase_price: np.ndarray, lifetime_years: np.ndarray, model: CostModel,
           target_load: float | None, tokens: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Derived:
    """Cost and capacity columns (METRICS' cost_per_hour_usd, cost_per_million_usd, cost_per_million_tokens_usd
    (NaN without `tokens`), units, power_total_w, throughput_per_usd, throughput_per_watt, plus
    plan_purchase_usd) with bounds from the figures' CIs."""
    thr, thr_lo, thr_hi = throughput
    pw, pw_lo, pw_hi = power
    cost = {"v": unit_cost_per_hour(price_per_hour, purchase_price, lifetime_years, pw, model)}
    for key, p in (("lo", pw_lo), ("hi", pw_hi)):  # without a power CI the bounds cost the same
        same = p is pw or np.array_equal(p, pw, equal_nan=True)
        cost[key] = cost["v"] if same else unit_cost_per_hour(price_per_hour, purchase_price, lifetime_years, p, model)
    if target_load is None:
        ones = np.ones_like(thr)
        units = (ones, ones, ones)
        per_million = (cost_per_million(cost["v"], thr), cost_per_million(cost["lo"], thr_hi),
                       cost_per_million(cost["hi"], thr_lo))
    else:
        units = (units_needed(target_load, thr, model.headroom, model.n_plus_one),
                 units_needed(target_load, thr_hi, model.headroom, model.n_plus_one),
                 units_needed(target_load, thr_lo, model.headroom, model.n_plus_one))
        load = np.full_like(thr, float(target_load))
        per_million = tuple(cost_per_million(u * cost[k], load) for u, k in zip(units, ("v", "lo", "hi")))
    per_hour = tuple(u * cost[k] for u, k in zip(units, ("v", "lo", "hi")))
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = {"cost_per_million_tokens_usd": _per_million_tokens(per_hour, tokens, thr, target_load),
            "cost_per_hour_usd": per_hour, "cost_per_million_usd": per_million, "units": units,
            "power_total_w": (units[0] * pw, units[1] * pw_lo, units[2] * pw_hi),
            "plan_purchase_usd": tuple(u * purchase_price for u in units),
            "throughput_per_usd": (thr / cost["v"], thr_lo / cost["hi"], thr_hi / cost["lo"]),
            "throughput_per_watt": (thr / pw, thr_lo / pw_hi, thr_hi / pw_lo),
        }
    return Derived(columns, cost["v"])


def _per_million_tokens(per_hour: tuple, tokens: tuple | None, throughput: np.ndarray,
                        target_load: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """USD per million generated tokens: of one unit at its token rate, or of the plan at the target load's."""
    if tokens is None:
        nan = np.full_like(throughput, np.nan)
        return nan, nan, nan
    tok, tok_lo, tok_hi = tokens
    if target_load is None:
        return (cost_per_million(per_hour[0], tok), cost_per_million(per_hour[1], tok_hi),
                cost_per_million(per_hour[2], tok_lo))
    rate = target_load * tok / throughput  # tokens/s the target load brings
    return tuple(cost_per_million(p, rate) for p in per_hour)
