"""Comparing two configurations on run-level figures (the run is the unit of replication).

For positive figures a (baseline) and b (candidate), one value per run:
- ratio of geometric means b/a with the Welch t interval on log figures (Welch 1947; scipy's
  `ttest_ind(equal_var=False).confidence_interval`), and the Welch test of equal log means;
- ratio of medians with a percentile bootstrap interval (each side resampled on its own);
- Mann-Whitney U (Mann & Whitney 1947), the rank test that needs no normality;
- TOST equivalence (Schuirmann 1987): two one-sided Welch tests against +-log(1 + margin);
- a verdict: "equivalent" when TOST rejects (the ratio is within the margin), else "different"
  when the Welch test rejects (after Benjamini-Hochberg when many comparisons are made at once),
  else "inconclusive" (neither shown: more runs are needed).
- Benjamini-Hochberg FDR (1995) over many comparisons (`statsmodels.stats.multitest.multipletests`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from analysis._checks import positive
from analysis.ci import CI
from runner.errors import AnalysisError

__all__ = ["Comparison", "compare", "compare_many", "ratio_of_geometric_means", "ratio_of_medians",
           "benjamini_hochberg", "VERDICTS"]

VERDICTS = ("equivalent", "different", "inconclusive")


@dataclass(frozen=True)
class Comparison:
    """B against A on run-level figures: ratios with CIs, three tests, and the verdict."""

    n_a: int
    n_b: int
    ratio_geometric_means: CI
    ratio_medians: CI
    welch_t: float
    welch_df: float
    welch_p: float
    mann_whitney_u: float
    mann_whitney_p: float
    margin: float
    tost_p: float
    verdict: str
    q_value: float | None = None   # Benjamini-Hochberg adjusted Welch p (many comparisons)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio_geometric_means"] = self.ratio_geometric_means.to_dict()
        out["ratio_medians"] = self.ratio_medians.to_dict()
        return out


def _logs(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    la = np.log(positive(a, "figures of A", 2))
    lb = np.log(positive(b, "figures of B", 2))
    if la.var() == 0 and lb.var() == 0:
        raise AnalysisError("A and B each have no variation between runs (every figure identical): a test "
                            "cannot estimate the noise; add runs or compare within-run batches")
    return la, lb


def ratio_of_geometric_means(a: Any, b: Any, confidence: float = 0.95) -> tuple[CI, Any]:
    """(CI of gmean(b)/gmean(a) from Welch's t interval on logs, the scipy Welch result)."""
    return _welch(*_logs(a, b), confidence)


def _welch(la: np.ndarray, lb: np.ndarray, confidence: float) -> tuple[CI, Any]:
    res = stats.ttest_ind(lb, la, equal_var=False)
    ci = res.confidence_interval(confidence)
    est = math.exp(lb.mean() - la.mean())
    return CI(est, math.exp(ci.low), math.exp(ci.high), confidence, "Welch t interval on log figures",
              len(la) + len(lb)), res


def ratio_of_medians(a: Any, b: Any, confidence: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> CI:
    """median(b)/median(a) with a percentile bootstrap interval (independent resampling of each side)."""
    fa, fb = positive(a, "figures of A", 1), positive(b, "figures of B", 1)
    stat = lambda x, y, axis=-1: np.median(y, axis=axis) / np.median(x, axis=axis)  # noqa: E731
    res = stats.bootstrap((fa, fb), stat, confidence_level=confidence, n_resamples=n_resamples,
                          method="percentile", rng=np.random.default_rng(seed))
    few = min(len(fa), len(fb)) < 5
    return CI(float(np.median(fb) / np.median(fa)), float(res.confidence_interval.low),
              float(res.confidence_interval.high), confidence, f"percentile bootstrap ({n_resamples} resamples)",
              len(fa) + len(fb), note="fewer than 5 figures a side: a coarse interval" if few else "")


def _tost(la: np.ndarray, lb: np.ndarray, margin: float) -> float:
    """p of TOST: H0 |log ratio| >= log(1 + margin), two one-sided Welch tests; the larger p."""
    delta = math.log1p(margin)
    above = stats.ttest_ind(lb + delta, la, equal_var=False, alternative="greater").pvalue
    below = stats.ttest_ind(lb - delta, la, equal_var=False, alternative="less").pvalue
    return float(max(above, below))


def _verdict(tost_p: float, diff_p: float, alpha: float) -> str:
    if tost_p < alpha:
        return "equivalent"
    return "different" if diff_p < alpha else "inconclusive"


def compare(a: Any, b: Any, *, margin: float = 0.02, confidence: float = 0.95, seed: int = 0) -> Comparison:
    """Compare B with A: figures of at least 2 runs a side, positive (latencies, rates)."""
    if not 0 < margin < 1:
        raise ValueError(f"margin as a fraction in (0, 1) (0.02 for 2%), not {margin!r}")
    la, lb = _logs(a, b)
    gm, welch = _welch(la, lb, confidence)
    mw = stats.mannwhitneyu(lb, la, alternative="two-sided")
    tost_p = _tost(la, lb, margin)
    return Comparison(len(la), len(lb), gm, ratio_of_medians(a, b, confidence, seed=seed),
                      float(welch.statistic), float(welch.df), float(welch.pvalue), float(mw.statistic),
                      float(mw.pvalue), margin, tost_p, _verdict(tost_p, float(welch.pvalue), 1 - confidence))


def benjamini_hochberg(p_values: Sequence[float], alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(reject, q-values) of the Benjamini-Hochberg step-up procedure at FDR alpha."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return np.zeros(0, dtype=bool), p
    if not np.isfinite(p).all():
        raise AnalysisError(f"p-values for FDR control include NaN: {p.tolist()}")
    reject, q, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
    return reject, q


def compare_many(baseline: Any, others: Mapping[str, Any], *, margin: float = 0.02, confidence: float = 0.95,
                 seed: int = 0) -> dict[str, Comparison]:
    """Compare every candidate with one baseline; "different" then needs the BH q-value below alpha."""
    results = {name: compare(baseline, values, margin=margin, confidence=confidence, seed=seed)
               for name, values in others.items()}
    alpha = 1 - confidence
    _, q = benjamini_hochberg([c.welch_p for c in results.values()], alpha)
    return {name: replace(c, q_value=float(qv), verdict=_verdict(c.tost_p, float(qv), alpha))
            for (name, c), qv in zip(results.items(), q)}
