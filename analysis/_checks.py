"""Input checks shared by the statistics: finite values, enough of them, positive where logs are taken."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runner.errors import AnalysisError

__all__ = ["finite", "positive", "require", "lower_is_better", "names"]


def finite(values: Any, what: str, min_n: int = 1) -> np.ndarray:
    """`values` as a 1-d array (integers kept as they are, anything else float64), checked to be
    finite and at least `min_n` long; AnalysisError naming `what` otherwise."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 else arr
        if arr.ndim != 1:
            raise AnalysisError(f"{what}: expected a 1-d series of numbers, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        try:
            arr = arr.astype(np.float64, copy=False)
        except (TypeError, ValueError):
            raise AnalysisError(f"{what}: values are not numbers ({arr.dtype})") from None
        bad = ~np.isfinite(arr)
        if bad.any():
            where = ", ".join(str(i) for i in np.flatnonzero(bad)[:5])
            raise AnalysisError(f"{what}: {int(bad.sum())} of {len(arr)} values are NaN or infinite "
                                f"(positions {where}{', ...' if bad.sum() > 5 else ''}); a statistic over "
                                f"them would be meaningless, so remove or explain them first")
    require(len(arr), min_n, what)
    return arr


def positive(values: Any, what: str, min_n: int = 1) -> np.ndarray:
    """Finite and strictly positive float values (ratios and logs need them)."""
    arr = finite(values, what, min_n).astype(np.float64, copy=False)
    if (arr <= 0).any():
        raise AnalysisError(f"{what}: {int((arr <= 0).sum())} values are zero or negative; ratios and "
                            f"log-scale statistics need positive figures")
    return arr


def require(n: int, min_n: int, what: str, hint: str = "") -> None:
    """AnalysisError unless n >= min_n."""
    if n < min_n:
        raise AnalysisError(f"{what}: {n} value{'s' if n != 1 else ''}, needs at least {min_n}"
                            + (f"; {hint}" if hint else ""))


def lower_is_better(metric: str | None, units: str | None = None) -> bool:
    """Whether smaller values of a figure are better: latencies and times are, rates are not."""
    name = (metric or "").lower()
    return "latency" in name or "ttft" in name or "tpot" in name or (units or "") in ("ms", "ns", "s", "us")


def names(items: Sequence[Any], limit: int = 5) -> str:
    """A short comma-separated list for messages."""
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (", ..." if len(items) > limit else "")
