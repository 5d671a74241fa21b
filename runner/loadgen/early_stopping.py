"""MLPerf early stopping: how many in-bound queries a percentile claim needs, and the estimate.

Method (MLPerf Inference rules, appendix "Early stopping"; LoadGen results.cc): with target
percentile p, tolerance d and confidence c, a run with h in-bound and t over-bound queries
passes when P(X >= h) <= 1 - c for X ~ Binomial(h + t, p - d), i.e. when
I_{p-d}(h, t + 1) <= 1 - c (regularised incomplete beta). With p = 0.99, d = 0, c = 0.99:
459 queries with 0 over-bound, 662 with 1, 2010 with 10.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import betainc

__all__ = ["passes", "min_passing", "min_queries", "percentile_estimate"]


def passes(h: int, t: int, p: float, tolerance: float = 0.0, confidence: float = 0.99) -> bool:
    """True when h in-bound and t over-bound queries show the p-th percentile is in bound."""
    if h <= 0:
        return False
    return float(betainc(h, t + 1, p - tolerance)) <= 1.0 - confidence


@lru_cache(maxsize=4096)
def min_passing(t: int, p: float, tolerance: float = 0.0, confidence: float = 0.99) -> int:
    """Smallest number of in-bound queries h that passes with t over-bound queries (bisection)."""
    lo, hi = 1, 2
    while not passes(hi, t, p, tolerance, confidence):
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if passes(mid, t, p, tolerance, confidence):
            hi = mid
        else:
            lo = mid + 1
    return lo


def min_queries(t: int, p: float, tolerance: float = 0.0, confidence: float = 0.99) -> int:
    """Total queries (in-bound + over-bound) needed when t of them are over the bound."""
    return min_passing(t, p, tolerance, confidence) + t


def percentile_estimate(latencies_ns: np.ndarray, p: float, tolerance: float = 0.0,
                        confidence: float = 0.99) -> tuple[float | int | None, int]:
    """LoadGen's early-stopping estimate of the p-th percentile latency (single/multi stream).

    Finds the largest t such that n >= min_passing(t) + t and returns
    (sorted_latencies[n - t], min_queries_needed); the estimate is None when the run is too
    short for even t = 1 (LoadGen's "not enough queries"). For p = 0.90 that minimum is 64.
    """
    n = len(latencies_ns)
    needed = min_queries(1, p, tolerance, confidence)
    if n < needed:
        return None, needed
    lo, hi = 1, n  # min_queries grows with t: bisect for the largest t with n >= min_queries(t)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if n >= min_queries(mid, p, tolerance, confidence):
            lo = mid
        else:
            hi = mid - 1
    t = lo
    ordered = np.sort(latencies_ns)
    return ordered[n - t].item(), needed
