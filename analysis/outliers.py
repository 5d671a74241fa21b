"""Outliers flagged by the generalised ESD test (Rosner 1983); nothing is ever dropped.

For i = 1..r: R_i = max |x - mean| / sd over the values left after removing the i - 1 most
extreme ones, against lambda_i = (n - i) t_{p, n-i-1} / sqrt((n - i - 1 + t^2)(n - i + 1)) with
p = 1 - alpha / (2 (n - i + 1)); the number of outliers is the largest i with R_i > lambda_i
(NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.5.17.3). It assumes the values other than
the outliers are roughly normal: use log figures for latencies and rates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from analysis._checks import finite

__all__ = ["ESDResult", "generalized_esd"]


@dataclass(frozen=True)
class ESDResult:
    """Positions of the flagged values (into the input, most extreme first), with every R_i and lambda_i."""

    outliers: list[int]
    statistics: list[float]
    critical_values: list[float]
    candidates: list[int]
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generalized_esd(values: Any, max_outliers: int | None = None, alpha: float = 0.05) -> ESDResult:
    """Rosner's generalised ESD test for up to `max_outliers` outliers (default: n // 10, at least 1)."""
    x = finite(values, "values for the ESD test", 3).astype(np.float64)
    n = len(x)
    r = max_outliers if max_outliers is not None else max(1, n // 10)
    r = max(0, min(r, n - 3))  # lambda_i needs n - i - 1 >= 2 degrees of freedom
    keep = np.ones(n, dtype=bool)
    stats_, crit, cands = [], [], []
    for i in range(1, r + 1):
        rest = x[keep]
        sd = rest.std(ddof=1)
        if sd == 0:
            break
        dev = np.abs(x - rest.mean())
        dev[~keep] = -1.0
        j = int(dev.argmax())
        m = n - i + 1   # values in this step
        p = 1 - alpha / (2 * m)
        t = stats.t.ppf(p, m - 2)
        stats_.append(float(dev[j] / sd))
        crit.append(float((m - 1) * t / np.sqrt((m - 2 + t * t) * m)))
        cands.append(j)
        keep[j] = False
    found = max((i + 1 for i in range(len(stats_)) if stats_[i] > crit[i]), default=0)
    return ESDResult(cands[:found], stats_, crit, cands, alpha)
