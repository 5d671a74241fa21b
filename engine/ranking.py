"""Uncertainty-aware verdicts and ranking, vectorised: P(meets a bound) from a CI, and ranks with ties.

P(meets): the figure's CI [lo, hi] around its estimate v is read as a split normal (each side its own
sigma = half-width / z, z = Phi^-1((1 + confidence) / 2)), so a skewed CI keeps its skew; for an upper
bound b, P = Phi((b - v) / sigma) with sigma from the side of v that b lies on (and mirrored for a lower
bound). A point estimate (lo = hi = v) gives P = 1 or 0. Where a bootstrap distribution of the figure is
given, P is the fraction of its draws that meet the bound instead.

Ranking: rank = 1 + the number of candidates that are certainly better (whose worst CI bound beats
this candidate's best), so candidates whose objective CIs overlap are never ordered by noise: they
share a rank ("tied"). Two candidates sharing a rank always overlap; the best estimate is always
rank 1; with point estimates this is ordinary competition ranking (1, 1, 3). O(n log n).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = ["VERDICTS", "MEETS", "UNCERTAIN", "FAILS", "UNKNOWN", "p_meets", "p_meets_draws", "verdicts",
           "rank_with_ties", "required_bound"]

VERDICTS = np.array(["meets", "uncertain", "fails", "unknown"], dtype=object)
MEETS, UNCERTAIN, FAILS, UNKNOWN = 0, 1, 2, 3


def _sigmas(value: np.ndarray, lo: np.ndarray, hi: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower- and upper-side sigmas of a split normal fitted to the CI (0 where the CI is missing, infinite
    where it is unbounded)."""
    z = ndtri(0.5 + confidence / 2)
    below = np.where(np.isnan(lo), 0.0, value - lo) / z  # an infinite bound: an unbounded side
    above = np.where(np.isnan(hi), 0.0, hi - value) / z
    return np.maximum(below, 0.0), np.maximum(above, 0.0)


def p_meets(value: np.ndarray, lo: np.ndarray, hi: np.ndarray, bound: float, upper: bool,
            confidence: float = 0.95) -> np.ndarray:
    """P(the true figure <= bound) for an upper bound, P(>= bound) for a lower one; NaN where value is NaN."""
    value = np.asarray(value, dtype=float)
    margin = bound - value if upper else value - bound  # >= 0: the estimate meets the bound
    # the side of the estimate the bound lies on decides the sigma (as _sigmas: 0 where that CI side is
    # missing or inverted, infinite where it is unbounded; + 0.0 makes a -0.0 zero)
    with np.errstate(divide="ignore", invalid="ignore"):
        above, below = np.asarray(hi, dtype=float) - value, value - np.asarray(lo, dtype=float)
        side = np.where((margin >= 0) == upper, above, below)
        sigma = np.fmax(side, 0.0) / ndtri(0.5 + confidence / 2) + 0.0
        p = ndtr(margin / sigma)  # sigma 0: 1 or 0 by the sign of the margin; NaN where value is NaN
    p[(margin == 0) & (sigma == 0)] = 1.0  # 0 / 0: the estimate sits on the bound with no spread
    return p


def p_meets_draws(draws: Sequence[np.ndarray | None], bound: float, upper: bool) -> np.ndarray:
    """P(meets) as the fraction of bootstrap draws meeting the bound, per candidate (NaN where None)."""
    out = np.full(len(draws), np.nan)
    for i, sample in enumerate(draws):  # only rows that carry a distribution, not the hot path
        if sample is not None and len(sample):
            sample = np.asarray(sample, dtype=float)
            out[i] = np.mean(sample <= bound) if upper else np.mean(sample >= bound)
    return out


def verdicts(p: np.ndarray, meets_at: float = 0.95, fails_at: float = 0.05) -> np.ndarray:
    """Verdict codes (index into VERDICTS): meets if P >= meets_at, fails if P <= fails_at, else uncertain;
    unknown where P is NaN (the candidate has no such figure)."""
    p = np.asarray(p, dtype=float)
    codes = (p < meets_at).astype(np.int8) + (p <= fails_at)  # meets 0, uncertain 1, fails 2 (NaN: 0)
    codes[np.isnan(p)] = UNKNOWN
    return codes


def required_bound(value: np.ndarray, lo: np.ndarray, hi: np.ndarray, upper: bool, meets_at: float = 0.95,
                   confidence: float = 0.95) -> np.ndarray:
    """The loosest bound each candidate would meet with P = meets_at (for 'relax X to ...' advice)."""
    below, above = _sigmas(np.asarray(value, dtype=float), np.asarray(lo, dtype=float), np.asarray(hi, dtype=float),
                           confidence)
    z = ndtri(meets_at)
    return value + z * above if upper else value - z * below


def rank_with_ties(loss: np.ndarray, loss_lo: np.ndarray, loss_hi: np.ndarray) -> np.ndarray:
    """Ranks (1 = best) of candidates by a loss to minimise, with CI [loss_lo, loss_hi]; see the module doc.

    A missing (NaN) bound is taken as the estimate; an infinite one is unbounded. Rank only candidates
    that have an objective value.
    """
    loss = np.asarray(loss, dtype=float)
    lo = np.where(np.isnan(loss_lo), loss, np.minimum(loss_lo, loss))
    hi = np.where(np.isnan(loss_hi), loss, np.maximum(loss_hi, loss))
    order = np.argsort(lo)  # sorted queries make the binary searches cache-friendly
    rank = np.empty(len(lo), dtype=np.int64)
    rank[order] = np.searchsorted(np.sort(hi), lo[order], side="left")
    return rank + 1
