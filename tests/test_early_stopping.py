"""MLPerf early stopping against the published numbers in the MLPerf Inference rules."""

import numpy as np
import pytest

from runner.loadgen import early_stopping as es


@pytest.mark.parametrize("overbound, total", [(0, 459), (1, 662), (10, 2010)])
def test_server_p99_minimum_queries_match_mlperf_rules(overbound, total):
    # MLPerf Inference rules: at p99, tolerance 0, confidence 99%: 459 / 662 / 2010 queries.
    assert es.min_queries(overbound, 0.99) == total
    assert not es.passes(total - overbound - 1, overbound, 0.99)


def test_single_stream_p90_needs_64_queries():
    # LoadGen's single-stream minimum for an early-stopping p90 estimate is 64 queries.
    assert es.min_queries(1, 0.90) == 64


def test_estimate_is_none_below_the_minimum_and_the_max_at_it():
    lat = np.arange(1, 64)
    assert es.percentile_estimate(lat, 0.90) == (None, 64)
    estimate, needed = es.percentile_estimate(np.arange(1, 65), 0.90)
    assert (estimate, needed) == (64, 64)


def test_estimate_is_conservative_and_converges_to_the_percentile():
    rng = np.random.default_rng(1)
    lat = rng.exponential(1.0, 200_000)
    estimate, _ = es.percentile_estimate(lat, 0.90)
    true_p90 = np.log(10)  # exponential(1) quantile
    assert np.percentile(lat, 90) <= estimate <= true_p90 * 1.02


def test_passes_is_the_binomial_tail():
    # P(X >= h) for X ~ Bin(h + t, p) against scipy's binomial survival function.
    from scipy.stats import binom
    for h, t in [(459, 0), (661, 1), (100, 3)]:
        tail = binom.sf(h - 1, h + t, 0.99)
        assert es.passes(h, t, 0.99) == (tail <= 0.01)
