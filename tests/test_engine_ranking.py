"""P(meets) and verdicts from CIs, ranking with ties, and the Pareto frontier against brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from engine import frontier, frontier_mask
from engine.ranking import VERDICTS, p_meets, p_meets_draws, rank_with_ties, required_bound, verdicts

Z975 = stats.norm.ppf(0.975)  # 1.959964: a 95% CI is +-1.96 sigma


# -- P(meets) -------------------------------------------------------------------------------------

def test_p_meets_reads_a_symmetric_ci_as_a_normal():
    # estimate 10 ms, 95% CI [8, 12]: sigma = 2 / 1.96; P(p99 <= 11) = Phi(1 / sigma)
    sigma = 2 / Z975
    p = p_meets(np.array([10.0]), np.array([8.0]), np.array([12.0]), 11.0, upper=True)
    assert p[0] == pytest.approx(stats.norm.cdf(11, loc=10, scale=sigma), rel=1e-12)
    assert p[0] == pytest.approx(0.8365, abs=1e-4)  # standard normal table, z = 0.98
    # a lower bound mirrors it: P(throughput >= 9) for the same figure
    p = p_meets(np.array([10.0]), np.array([8.0]), np.array([12.0]), 9.0, upper=False)
    assert p[0] == pytest.approx(stats.norm.sf(9, loc=10, scale=sigma), rel=1e-12)


def test_a_bound_at_the_ci_edge_is_met_with_the_ci_one_sided_level():
    # the bound at the upper 95% limit: P(X <= hi) = 0.975 by construction
    assert p_meets(np.array([5.0]), np.array([4.0]), np.array([6.0]), 6.0, True)[0] == pytest.approx(0.975)
    assert p_meets(np.array([5.0]), np.array([4.0]), np.array([6.0]), 4.0, True)[0] == pytest.approx(0.025)


def test_a_skewed_ci_uses_the_side_facing_the_bound():
    # CI [9, 14] around 10: above the estimate sigma = 4 / 1.96, below sigma = 1 / 1.96
    value, lo, hi = np.array([10.0]), np.array([9.0]), np.array([14.0])
    assert p_meets(value, lo, hi, 12.0, True)[0] == pytest.approx(stats.norm.cdf(2 / (4 / Z975)))
    assert p_meets(value, lo, hi, 9.5, True)[0] == pytest.approx(stats.norm.cdf(-0.5 / (1 / Z975)))


def test_point_estimates_meet_or_fail_outright_and_missing_figures_are_unknown():
    value = np.array([10.0, 10.0, 16.0, np.nan])
    p = p_meets(value, value, value, 15.0, True)
    assert p[:3].tolist() == [1.0, 1.0, 0.0] and np.isnan(p[3])
    # an estimate exactly on the bound meets it; a missing CI (NaN bounds) is a point estimate
    assert p_meets(np.array([15.0]), np.array([np.nan]), np.array([np.nan]), 15.0, True)[0] == 1.0


def test_a_bootstrap_distribution_gives_the_fraction_of_draws_that_meet():
    draws = [np.array([9.0, 10.0, 11.0, 12.0, 13.0]), None]
    p = p_meets_draws(draws, 11.5, upper=True)
    assert p[0] == pytest.approx(3 / 5) and np.isnan(p[1])
    assert p_meets_draws(draws, 11.5, upper=False)[0] == pytest.approx(2 / 5)


def test_verdicts_by_threshold():
    p = np.array([0.99, 0.95, 0.5, 0.05, 0.0, np.nan])
    assert VERDICTS[verdicts(p)].tolist() == ["meets", "meets", "uncertain", "fails", "fails", "unknown"]
    assert VERDICTS[verdicts(p, meets_at=0.99, fails_at=0.01)].tolist()[:4] == ["meets", "uncertain", "uncertain",
                                                                                 "uncertain"]


def test_required_bound_is_where_p_reaches_the_threshold():
    value, lo, hi = np.array([10.0]), np.array([8.0]), np.array([12.0])
    needed = required_bound(value, lo, hi, upper=True)
    assert p_meets(value, lo, hi, float(needed[0]), True)[0] == pytest.approx(0.95)
    assert needed[0] == pytest.approx(10 + stats.norm.ppf(0.95) * 2 / Z975)


# -- ranking with ties ----------------------------------------------------------------------------

def test_overlapping_cis_share_a_rank():
    # A [1, 2] and C [1.5, 5] overlap: both rank 1; B [3, 4] is certainly worse than A only: rank 2
    loss = np.array([1.5, 3.5, 2.0])
    ranks = rank_with_ties(loss, np.array([1.0, 3.0, 1.5]), np.array([2.0, 4.0, 5.0]))
    assert ranks.tolist() == [1, 2, 1]


def test_point_estimates_rank_as_competition_ranking():
    loss = np.array([3.0, 1.0, 3.0, 2.0, 5.0])
    assert rank_with_ties(loss, loss, loss).tolist() == [3, 1, 3, 2, 5]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 10), st.floats(0, 10)), min_size=1, max_size=40))
def test_ranks_match_their_definition(rows):
    loss = np.array([r[0] for r in rows])
    lo, hi = loss - np.array([r[1] for r in rows]), loss + np.array([r[2] for r in rows])
    ranks = rank_with_ties(loss, lo, hi)
    expected = [1 + sum(hi[i] < lo[j] for i in range(len(rows))) for j in range(len(rows))]
    assert ranks.tolist() == expected
    assert ranks[np.argmin(loss)] == 1  # the best estimate is always rank 1
    for i in range(len(rows)):  # a shared rank means the CIs overlap
        for j in range(len(rows)):
            if ranks[i] == ranks[j]:
                assert lo[i] <= hi[j] and lo[j] <= hi[i]


# -- Pareto frontier ------------------------------------------------------------------------------

def brute_force(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """O(n^2): i is on the frontier unless some j is <= on both and < on one (both minimised)."""
    ok = np.isfinite(x) & np.isfinite(y)
    on = np.zeros(len(x), dtype=bool)
    for i in np.flatnonzero(ok):
        dominated = ok & (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        on[i] = not dominated.any()
    return on


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=60))
def test_frontier_equals_brute_force_with_ties_and_duplicates(points):
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    assert frontier_mask(x, y).tolist() == brute_force(x, y).tolist()
    # maximising y is minimising -y
    assert frontier_mask(x, y, y_lower_is_better=False).tolist() == brute_force(x, -y).tolist()


def test_frontier_by_hand_and_missing_values():
    #      A      B      C      D (dominated by B)  E (missing y)
    x = np.array([1.0, 2.0, 4.0, 3.0, 0.5])
    y = np.array([5.0, 2.0, 1.0, 3.0, np.nan])
    assert frontier_mask(x, y).tolist() == [True, True, True, False, False]


def test_a_single_candidate_is_its_own_frontier():
    frame = pd.DataFrame({"candidate": ["only"], "cost_per_million_usd": [0.2], "p99_ms": [9.0]})
    assert frontier(frame, "cost", "p99")["candidate"].tolist() == ["only"]
    assert frontier_mask(np.array([np.nan]), np.array([1.0])).tolist() == [False]


def test_frontier_over_metrics_in_their_better_directions():
    frame = pd.DataFrame({"candidate": list("abcd"), "samples_per_s": [100.0, 200.0, 300.0, 250.0],
                          "p99_ms": [5.0, 6.0, 9.0, 10.0]})
    # more throughput is better, less latency is better: d is beaten by c on both
    assert frontier(frame, "throughput", "p99")["candidate"].tolist() == ["c", "b", "a"]
