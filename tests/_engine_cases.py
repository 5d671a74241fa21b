"""Random recommendation questions for the engine's equivalence tests: candidate sets with ties (equal
figures, point estimates, overlapping CIs), missing figures and prices, and bounds no candidate meets."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import Catalog, CatalogEntry, Constraints
from engine.candidates import from_records

OBJECTIVES = ("cost", "throughput", "p99", "mix:cost=0.6,p99=0.4", "throughput_per_watt", "units")


def _figure(rng: np.random.Generator, levels: tuple[float, ...], missing: float) -> dict[str, float] | None:
    """A figure from a few levels (so that equal values tie), with a CI or as a point estimate; None = missing."""
    if rng.random() < missing:
        return None
    value = float(rng.choice(levels)) * (1.0 if rng.random() < 0.5 else float(rng.uniform(0.8, 1.2)))
    if rng.random() < 0.3:
        return {"": value}
    below, above = rng.uniform(0.0, 0.3, 2) * value
    return {"": value, "_lo": value - below, "_hi": value + above}


def case(seed: int) -> dict[str, Any]:
    """One question: {frame, constraints, objective, catalog, target_load, include_uncertain}."""
    rng = np.random.default_rng(seed)
    n, systems = int(rng.integers(1, 80)), int(rng.integers(1, 12))
    missing = float(rng.choice([0.0, 0.1, 0.3]))
    rows = []
    for i in range(n):
        row: dict[str, Any] = {"candidate": f"c{i:03d}", "system": f"s{int(rng.integers(systems))}",
                               "scenario": "server", "backend": str(rng.choice(["onnxruntime", "openvino"])),
                               "quick": bool(rng.random() < 0.2),
                               "provenance": str(rng.choice(["measured", "imported"]))}
        for column, levels in (("samples_per_s", (500.0, 1000.0, 2000.0)), ("p99_ms", (5.0, 10.0, 20.0)),
                               ("p50_ms", (2.0, 4.0)), ("accuracy_ratio", (0.98, 0.995, 1.0)),
                               ("power_w", (100.0, 300.0))):
            figure = _figure(rng, levels, missing)
            row.update({column + side: v for side, v in (figure or {}).items()})
        rows.append(row)
    entries = [CatalogEntry(system_name=f"s{i}", price_per_hour_usd=float(rng.choice([1.0, 2.0, 3.5])))
               if i % 3 else CatalogEntry(system_name=f"s{i}", purchase_price_usd=float(rng.choice([1e4, 3e4])),
                                          lifetime_years=4, power_w=200.0)
               for i in range(systems) if rng.random() > missing]
    catalog = Catalog(systems=tuple(entries), defaults={"tariff_usd_per_kwh": 0.15, "utilisation": 0.7})
    options = {"max_p99_ms": float(rng.choice([0.01, 8.0, 12.0, 25.0])),
               "min_accuracy_ratio": float(rng.choice([0.97, 0.99, 0.999])),
               "min_throughput_per_s": float(rng.choice([400.0, 900.0, 5000.0])),
               "max_power_w": float(rng.choice([150.0, 1000.0]))}
    keep = rng.random(len(options)) < 0.6
    constraints = Constraints.build(**{k: v for k, v, kept in zip(options, options.values(), keep) if kept})
    objective = str(rng.choice(OBJECTIVES))
    target_load = 5000.0 if objective == "units" or rng.random() < 0.6 else None
    return {"frame": from_records(rows), "constraints": constraints, "objective": objective, "catalog": catalog,
            "target_load": target_load, "include_uncertain": bool(rng.random() < 0.3)}
