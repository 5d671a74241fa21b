"""What a scenario returns: the per-query performance log, its summary and its validity."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["ScenarioResult", "RECORD_FIELDS", "PERCENTILES", "LOADGEN_LIMIT", "latency_summary",
           "loadgen_percentile", "empty_records"]

RECORD_FIELDS = ("sample_index", "query_index", "scheduled_ns", "issued_ns", "completed_ns")
PERCENTILES = (50.0, 90.0, 95.0, 97.0, 99.0, 99.9)
LOADGEN_LIMIT = "LOADGEN_LIMIT"  # validity of a run whose load generator could not keep the schedule


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """Outcome of one scenario run (per-query records are numpy arrays, ns timestamps).

    Frozen once made: a figure known only later (the CPU utilisation of the timed part, the issuer's CPU
    time) gives a new result through `with_summary`, never a patched one.
    """

    scenario: str
    headline_metric: str
    headline_value: float | None
    headline_units: str
    valid: bool
    reasons: list[str]
    summary: dict[str, Any]
    effective_settings: dict[str, Any]
    records: dict[str, np.ndarray] = field(default_factory=dict)
    loadgen_limit: bool = False  # not valid, and not a verdict on the system either (runner.loadgen.lateness)

    @property
    def validity(self) -> str:
        if self.loadgen_limit:
            return LOADGEN_LIMIT
        return "VALID" if self.valid else "INVALID"

    def with_summary(self, **figures: Any) -> ScenarioResult:
        """This result with `figures` added to (or replacing those of) its summary."""
        return replace(self, summary={**self.summary, **figures})


def empty_records() -> dict[str, np.ndarray]:
    """A performance log with no queries."""
    return {name: np.empty(0, dtype=np.int64) for name in RECORD_FIELDS}


def loadgen_percentile(ordered: np.ndarray, pct: float) -> Any:
    """LoadGen's percentile (results.cc): the sorted value at index min(n - 1, floor(n * pct / 100))."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def latency_summary(latencies_ns: np.ndarray) -> dict[str, float]:
    """Min, mean, max and the usual percentiles of latencies, in milliseconds.

    Percentiles follow LoadGen's convention (`loadgen_percentile`), so our figures and
    LoadGen's agree on the same samples.
    """
    n = len(latencies_ns)
    if n == 0:
        return {}
    ordered = np.sort(latencies_ns)
    out = {"latency_min_ms": float(ordered[0]) / 1e6, "latency_mean_ms": float(ordered.mean()) / 1e6,
           "latency_max_ms": float(ordered[-1]) / 1e6}
    for pct in PERCENTILES:
        out[f"latency_p{pct:g}_ms".replace(".", "_")] = float(loadgen_percentile(ordered, pct)) / 1e6
    return out
