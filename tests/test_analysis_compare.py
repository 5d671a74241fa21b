"""Comparisons on run-level figures (analysis.compare) against published and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.compare import (
    benjamini_hochberg,
    compare,
    compare_many,
    ratio_of_geometric_means,
)
from runner.errors import AnalysisError

# Benjamini & Hochberg (1995), J. R. Statist. Soc. B 57(1), section 4: 15 p-values from a study of
# myocardial infarction treatment; at q* = 0.05 their procedure rejects the four smallest.
BH_P = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
        0.6528, 0.7590, 1.000]


def test_benjamini_hochberg_matches_the_published_example():
    reject, q = benjamini_hochberg(BH_P, 0.05)
    assert reject.tolist() == [True] * 4 + [False] * 11
    # q-values by hand: min over j >= i of p_j m / j
    m = len(BH_P)
    expected = [min(BH_P[j] * m / (j + 1) for j in range(i, m)) for i in range(m)]
    assert q == pytest.approx([min(1.0, e) for e in expected])


def test_ratio_of_geometric_means_is_welchs_interval_on_logs():
    a = [10.2, 10.5, 9.9, 10.1, 10.4]
    b = [11.0, 11.4, 10.9, 11.6]
    ci, _ = ratio_of_geometric_means(a, b, 0.95)
    la, lb = np.log(a), np.log(b)
    va, vb = la.var(ddof=1) / len(la), lb.var(ddof=1) / len(lb)
    df = (va + vb) ** 2 / (va ** 2 / (len(la) - 1) + vb ** 2 / (len(lb) - 1))  # Welch-Satterthwaite
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = lb.mean() - la.mean()
    assert ci.estimate == pytest.approx(math.exp(diff))
    assert (ci.low, ci.high) == pytest.approx((math.exp(diff - half), math.exp(diff + half)))


def test_tost_agrees_with_the_90_percent_interval():
    # TOST at alpha rejects exactly when the (1 - 2 alpha) interval lies inside the margin (Schuirmann 1987)
    rng = np.random.default_rng(4)
    for shift in (0.0, 0.01, 0.015, 0.03):
        a = rng.lognormal(0, 0.01, 6)
        b = rng.lognormal(shift, 0.01, 6)
        result = compare(a, b, margin=0.02)
        ci90, _ = ratio_of_geometric_means(a, b, 0.90)
        inside = 1 / 1.02 < ci90.low and ci90.high < 1.02
        assert (result.tost_p < 0.05) == inside


@pytest.mark.parametrize("shift, sd, n, verdict", [
    (0.0, 0.003, 8, "equivalent"),     # tight and the same: no change within 2%
    (0.10, 0.01, 5, "different"),      # 10% apart
    (0.0, 0.08, 3, "inconclusive"),    # too noisy and too few runs to tell
])
def test_verdict_separates_equivalent_different_and_inconclusive(shift, sd, n, verdict):
    rng = np.random.default_rng(9)
    a, b = rng.lognormal(0, sd, n), rng.lognormal(shift, sd, n)
    assert compare(a, b, margin=0.02).verdict == verdict


def test_mann_whitney_is_reported_alongside():
    a, b = [1.0, 1.1, 1.2, 1.3], [2.0, 2.1, 2.2, 2.3]
    result = compare(a, b)
    assert result.mann_whitney_u == 16 and result.mann_whitney_p == pytest.approx(2 / math.comb(8, 4))


def test_many_comparisons_are_fdr_controlled():
    rng = np.random.default_rng(1)
    base = rng.lognormal(0, 0.02, 6)
    others = {f"c{i}": rng.lognormal(0, 0.02, 6) for i in range(8)}
    others["faster"] = rng.lognormal(-0.2, 0.02, 6)
    results = compare_many(base, others)
    _, q = benjamini_hochberg([c.welch_p for c in results.values()])
    assert [c.q_value for c in results.values()] == pytest.approx(q.tolist())
    assert results["faster"].verdict == "different"
    assert all(c.q_value >= c.welch_p for c in results.values())


def test_bad_input():
    with pytest.raises(AnalysisError, match="needs at least 2"):
        compare([1.0], [1.0, 2.0])
    with pytest.raises(AnalysisError, match="zero or negative"):
        compare([1.0, -1.0], [1.0, 2.0])
    with pytest.raises(AnalysisError, match="NaN"):
        compare([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(AnalysisError, match="no variation"):
        compare([2.0, 2.0], [3.0, 3.0])
    with pytest.raises(AnalysisError, match="NaN"):
        benjamini_hochberg([0.1, float("nan")])
