"""Change points in a run history: candidates from PELT or binary segmentation, confirmed by tests.

Candidates: `ruptures` (Truong, Oudre & Vayatis 2020) with the least-squares cost (mean shifts)
on the series standardised by a robust noise scale (the MAD of first differences / sqrt 2, which
a shift barely moves), penalty 2 log n per change (BIC-like), `jump=1` so a break can fall at any
observation (ruptures' default jump=5 only tries every fifth), and a minimum segment size.
Confirmation: each candidate's adjacent segments (from the previous to the next candidate) are
compared with Welch's t test (and Mann-Whitney U, reported); the p-values of all candidates go
through Benjamini-Hochberg, and a change point is confirmed when its q-value is below alpha.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import ruptures as rpt
from scipy import stats

from analysis._checks import finite, require
from analysis.compare import benjamini_hochberg

__all__ = ["ChangePoint", "detect", "MIN_SIZE", "robust_scale"]

MIN_SIZE = 5


@dataclass(frozen=True)
class ChangePoint:
    """A candidate break after `index` observations: the adjacent segments, the tests, and the verdict."""

    index: int
    before_mean: float
    after_mean: float
    before_n: int
    after_n: int
    welch_p: float
    mann_whitney_p: float
    q_value: float
    confirmed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def robust_scale(x: np.ndarray) -> float:
    """Noise scale from first differences: 1.4826 MAD(diff) / sqrt(2), else the standard deviation."""
    d = np.diff(x)
    mad = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2)
    return mad if mad > 0 else float(x.std())


def _candidates(x: np.ndarray, method: str, penalty: float | None, min_size: int, jump: int) -> list[int]:
    scale = robust_scale(x)
    if scale == 0:
        return []
    z = (x - np.median(x)) / scale
    algo = {"pelt": rpt.Pelt, "binseg": rpt.Binseg}.get(method)
    if algo is None:
        raise ValueError(f"method must be 'pelt' or 'binseg', not {method!r}")
    pen = penalty if penalty is not None else 2 * math.log(len(x))
    return algo(model="l2", min_size=min_size, jump=jump).fit(z).predict(pen=pen)[:-1]


def _test(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    if before.var() == 0 and after.var() == 0:  # no noise: a change of level is certain, no change is none
        p = 0.0 if before.mean() != after.mean() else 1.0
        return p, p
    welch = stats.ttest_ind(after, before, equal_var=False).pvalue
    mw = stats.mannwhitneyu(after, before, alternative="two-sided").pvalue
    return float(welch), float(mw)


def detect(series: Any, *, method: str = "pelt", penalty: float | None = None, min_size: int = MIN_SIZE,
           jump: int = 1, alpha: float = 0.05) -> list[ChangePoint]:
    """Every candidate change point of a series in time order, each with its tests; `confirmed` marks
    those whose Benjamini-Hochberg q-value is below alpha."""
    x = finite(series, "series for change points").astype(np.float64)
    require(len(x), 2 * min_size, "series for change points", f"two segments of min_size {min_size}")
    cuts = _candidates(x, method, penalty, min_size, jump)
    bounds = [0, *cuts, len(x)]
    tests = [_test(x[bounds[i - 1]:bounds[i]], x[bounds[i]:bounds[i + 1]]) for i in range(1, len(bounds) - 1)]
    _, q = benjamini_hochberg([t[0] for t in tests], alpha)
    out = []
    for i, cut in enumerate(cuts):
        before, after = x[bounds[i]:cut], x[cut:bounds[i + 2]]
        out.append(ChangePoint(int(cut), float(before.mean()), float(after.mean()), len(before), len(after),
                               tests[i][0], tests[i][1], float(q[i]), bool(q[i] < alpha)))
    return out
