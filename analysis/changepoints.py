"""Change points in a run history: candidates from PELT or binary segmentation, confirmed by tests.

Candidates: `ruptures` (Truong, Oudre & Vayatis 2020) with the least-squares cost (mean shifts)
on the series standardised by a robust noise scale (the MAD of first differences / sqrt 2, which
a shift barely moves), penalty 2 log n per change (BIC-like), `jump=1` so a break can fall at any
observation (ruptures' default jump=5 only tries every fifth), and a minimum segment size.
Confirmation: each candidate's adjacent segments (from the previous to the next candidate) are
compared with Welch's t statistic. Because the candidate was put where the two segments differ
most, the plain Welch p-value (reported, with Mann-Whitney U's) is far too small; the p-value
that confirms is a permutation test of the largest Welch |t| over every split of the window
that leaves min_size a side (the selection is repeated under each permutation, as in
Antoch & Huskova 2001). The p-values of all candidates go through Benjamini-Hochberg, and a
change point is confirmed when its q-value is below alpha. The tests assume independent runs:
a slow drift or autocorrelated history can show as several confirmed change points.
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

__all__ = ["ChangePoint", "detect", "max_t_pvalue", "MIN_SIZE", "robust_scale"]

MIN_SIZE = 5


@dataclass(frozen=True)
class ChangePoint:
    """A candidate break after `index` observations: the adjacent segments, the tests, and the verdict."""

    index: int
    before_mean: float
    after_mean: float
    before_n: int
    after_n: int
    p_value: float         # permutation test of the largest Welch |t| in the window (confirms)
    welch_p: float         # plain Welch p at this split (too small: the split was chosen)
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
    pen = penalty if penalty is not None else 2 * math.log(len(x))
    if method == "pelt" and jump == 1:  # PELT in C: the linear kernel's cost is the least-squares cost
        algo = rpt.KernelCPD(kernel="linear", min_size=min_size)
    elif method == "pelt":  # KernelCPD ignores jump; ruptures' Python PELT honours it
        algo = rpt.Pelt(model="l2", min_size=min_size, jump=jump)
    elif method == "binseg":
        algo = rpt.Binseg(model="l2", min_size=min_size, jump=jump)
    else:
        raise ValueError(f"method must be 'pelt' or 'binseg', not {method!r}")
    return [int(c) for c in algo.fit(z).predict(pen=pen)[:-1]]


def _welch_t(cum: np.ndarray, cum2: np.ndarray, k: np.ndarray, w: int) -> np.ndarray:
    """Welch |t| of before/after for splits k (rows of cumulative sums and sums of squares)."""
    s1, q1 = cum[..., k - 1], cum2[..., k - 1]
    s2, q2 = cum[..., -1:] - s1, cum2[..., -1:] - q1
    n1, n2 = k, w - k
    v1 = np.maximum(q1 - s1 * s1 / n1, 0) / (n1 - 1)
    v2 = np.maximum(q2 - s2 * s2 / n2, 0) / (n2 - 1)
    se = np.sqrt(v1 / n1 + v2 / n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(s2 / n2 - s1 / n1) / se
    return np.where(se > 0, t, np.where(np.abs(s2 / n2 - s1 / n1) > 0, np.inf, 0.0))


def max_t_pvalue(window: np.ndarray, min_size: int, permutations: int = 999, seed: int = 0) -> float:
    """Permutation p-value of the largest Welch |t| over the splits of a window (min_size a side)."""
    w = len(window)
    k = np.arange(max(min_size, 2), w - max(min_size, 2) + 1)
    if len(k) == 0:
        return 1.0
    observed = _welch_t(np.cumsum(window)[None], np.cumsum(window ** 2)[None], k, w).max()
    rng = np.random.default_rng(seed)
    perm = rng.permuted(np.broadcast_to(window, (permutations, w)), axis=1)
    null = _welch_t(np.cumsum(perm, axis=1), np.cumsum(perm ** 2, axis=1), k, w).max(axis=1)
    return float((1 + (null >= observed * (1 - 1e-12)).sum()) / (permutations + 1))


def _plain_tests(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    if before.var() == 0 and after.var() == 0:  # no noise: a change of level is certain, no change is none
        p = 0.0 if before.mean() != after.mean() else 1.0
        return p, p
    welch = stats.ttest_ind(after, before, equal_var=False).pvalue
    mw = stats.mannwhitneyu(after, before, alternative="two-sided").pvalue
    return float(welch), float(mw)


def _confirm(x: np.ndarray, cuts: list[int], min_size: int, alpha: float, permutations: int,
             seed: int) -> tuple[list[int], dict[int, tuple[int, int, float, float]]]:
    """Backward elimination: test every candidate on the window between its neighbours, drop the
    least significant unconfirmed one (its neighbours' windows widen) until all left are confirmed.
    Returns the kept cuts and, per candidate, its last test: (window start, window end, p, q)."""
    kept, last = list(cuts), {}
    while kept:
        bounds = [0, *kept, len(x)]
        p = [max_t_pvalue(x[bounds[i]:bounds[i + 2]], min_size, permutations, seed) for i in range(len(kept))]
        _, q = benjamini_hochberg(p, alpha)
        last.update({cut: (bounds[i], bounds[i + 2], p[i], float(q[i])) for i, cut in enumerate(kept)})
        if (q < alpha).all():
            break
        kept.pop(int(np.argmax(p)))
    return kept, last


def detect(series: Any, *, method: str = "pelt", penalty: float | None = None, min_size: int = MIN_SIZE,
           jump: int = 1, alpha: float = 0.05, permutations: int = 999, seed: int = 0) -> list[ChangePoint]:
    """Every candidate change point of a series in time order, each with its tests; `confirmed` marks
    those kept by backward elimination with a Benjamini-Hochberg q-value (of the permutation max-t
    p-value) below alpha. Segments run to the neighbours of the candidate's last test (the confirmed
    ones, for a confirmed change point)."""
    x = finite(series, "series for change points").astype(np.float64)
    require(len(x), 2 * min_size, "series for change points", f"two segments of min_size {min_size}")
    cuts = _candidates(x, method, penalty, min_size, jump)
    kept, last = _confirm(x, cuts, min_size, alpha, permutations, seed)
    out = []
    for cut in cuts:
        lo, hi, p, q = last[cut]
        before, after = x[lo:cut], x[cut:hi]
        welch, mw = _plain_tests(before, after)
        out.append(ChangePoint(cut, float(before.mean()), float(after.mean()), len(before), len(after),
                               p, welch, mw, q, cut in kept))
    return out
