"""Within-run confidence intervals (analysis.ci) against published values and independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.diagnostic import acorr_ljungbox

from analysis import ci
from analysis import samples as S
from runner.errors import AnalysisError
from runner.loadgen.result import latency_summary

# asv's statistics tests (asv/test/test_statistics.py, test_quantile_ci_r), whose intervals were
# checked against R's asht::quantileTest: 80% intervals of the 0.2, 0.5 and 0.8 quantiles.
ASV_X = [-2.47946614, -1.49595963, -1.02812482, -0.76592323, -0.09452743, 0.10732743, 0.27798342, 0.50173779,
         0.57829823, 0.60474948, 0.94695675, 1.20159789]
ASV_CI = {0.2: (-2.47946614, -0.09452743), 0.5: (-0.76592323, 0.57829823), 0.8: (0.50173779, 1.20159789)}

# scipy's bootstrap tests against R's boot package (scipy/stats/tests/test_resampling.py,
# test_bootstrap_against_R): BCa 95% interval of the mean, (32.31, 91.43).
BOOT_X = [10, 12, 12.5, 12.5, 13.9, 15, 21, 22, 23, 34, 50, 81, 89, 121, 134, 213]


@pytest.mark.parametrize("q", sorted(ASV_CI))
def test_quantile_ci_matches_asv_and_r(q):
    result = ci.percentile_ci(ASV_X, q, confidence=0.8)
    assert (result.low, result.high) == ASV_CI[q]
    assert result.coverage >= 0.8 and result.needs_n is None


def test_ranks_and_coverage_follow_the_binomial():
    # n = 12, p = 0.5, 80%: ranks 4 and 9 (1-based); coverage P(4 <= B <= 8) for B ~ Bin(12, 0.5)
    lo, hi, coverage = ci.order_statistic_ranks(12, 0.5, 0.8)
    assert (lo, hi) == (3, 8)
    assert coverage == pytest.approx(sum(stats.binom.pmf(k, 12, 0.5) for k in range(4, 9)))


@pytest.mark.parametrize("n", [1, 7, 30, 64, 299, 368, 1000])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_percentile_ci_equals_scipy_quantile_test(n, q):
    x = np.random.default_rng(n).lognormal(0, 1, n)
    ours = ci.percentile_ci(x, q, 0.95)
    theirs = stats.quantile_test(x, p=q).confidence_interval(0.95)
    assert ours.low == (None if np.isnan(theirs.low) else theirs.low)
    assert ours.high == (None if np.isnan(theirs.high) else theirs.high)


def test_unbounded_interval_says_how_many_samples_it_needs():
    # p99 at 95%: the top order statistic bounds it only once 0.99^n <= 0.025, i.e. n >= 368
    assert ci.needs_samples(0.99, 0.95) == 368
    short = ci.percentile_ci(np.arange(100.0), 0.99)
    assert short.high is None and short.low is not None and short.needs_n == 368
    assert "needs >= 368 samples" in short.note
    assert ci.percentile_ci(np.arange(368.0), 0.99).bounded


def test_point_estimate_is_loadgens_percentile_and_several_quantiles_share_one_partition():
    lat = np.random.default_rng(3).integers(100_000, 900_000, 10_001)
    summary = latency_summary(lat)
    cis = ci.percentile_cis(lat, (0.5, 0.9, 0.99))
    for q, key in ((0.5, "latency_p50_ms"), (0.9, "latency_p90_ms"), (0.99, "latency_p99_ms")):
        assert cis[q].estimate / 1e6 == pytest.approx(summary[key], rel=0, abs=1e-12)
        ordered = np.sort(lat)
        lo, hi, _ = ci.order_statistic_ranks(len(lat), q)
        assert (cis[q].low, cis[q].high) == (ordered[lo], ordered[hi])


def test_bca_mean_matches_r_boot():
    result = ci.mean_ci(BOOT_X, 0.95, n_resamples=1_000_000)
    assert result.method.startswith("BCa")
    assert result.low == pytest.approx(32.31, rel=0.005) and result.high == pytest.approx(91.43, rel=0.005)
    assert result.estimate == pytest.approx(np.mean(BOOT_X))


def test_ljung_box_equals_statsmodels():
    rng = np.random.default_rng(5)
    e = rng.normal(size=600)
    ar = np.empty_like(e)
    ar[0] = e[0]
    for t in range(1, len(e)):
        ar[t] = 0.6 * ar[t - 1] + e[t]
    for series in (e, ar):
        ours = ci.ljung_box(series, lags=10)
        ref = acorr_ljungbox(series, lags=[10])
        assert ours.statistic == pytest.approx(float(ref["lb_stat"].iloc[0]), rel=1e-10)
        assert ours.p_value == pytest.approx(float(ref["lb_pvalue"].iloc[0]), rel=1e-8, abs=1e-300)
    assert ci.ljung_box(e).independent and not ci.ljung_box(ar).independent
    assert ci.ljung_box(e[:10]).independent is None


def _ar1(rng, n, phi):
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1 - phi * phi)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def test_batch_means_keep_their_coverage_under_autocorrelation():
    # AR(1) with phi = 0.8 around a true mean of 0: the naive t interval covers far less than 95%,
    # batch means (picked automatically after Ljung-Box) stay close to it
    rng = np.random.default_rng(11)
    hits = naive = 0
    reps = 200
    for _ in range(reps):
        x = _ar1(rng, 4000, 0.8)
        result = ci.mean_ci(x)
        assert result.method.startswith("batch means")
        hits += result.low <= 0 <= result.high
        half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        naive += abs(x.mean()) <= half
    assert 0.88 <= hits / reps <= 0.99
    assert naive / reps < 0.6


def test_percentiles_of_autocorrelated_samples_use_batch_quantiles():
    rng = np.random.default_rng(2)
    lat = (np.exp(0.2 * _ar1(rng, 20_000, 0.9)) * 1e6).astype(np.int64)
    rec = _single_stream(lat)
    out = ci.run_cis(rec)
    p90 = out["latency_ms"]["p90"]
    assert out["latency_ms"]["independence"]["independent"] is False
    assert p90["method"].startswith("batch quantiles") and "autocorrelated" in p90["note"]
    exact = ci.percentile_ci(lat, 0.9).in_units(1e6)
    assert p90["high"] - p90["low"] > exact.high - exact.low  # wider than the independence-assuming interval


def test_throughput_interval_covers_the_true_rate():
    # Poisson completions at 1,000/s: gaps are exponential with mean 1 ms
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(100):
        gaps = rng.exponential(1e6, 1500)
        result = ci.throughput_ci(np.ones(len(gaps)), gaps)
        assert result.method.startswith("BCa")
        covered += result.low <= 1000 <= result.high
    assert covered >= 88


def _single_stream(lat_ns):
    completed = np.cumsum(lat_ns)
    scheduled = completed - lat_ns
    n = len(lat_ns)
    return {"sample_index": np.arange(n) % 50, "query_index": np.arange(n), "scheduled_ns": scheduled,
            "issued_ns": scheduled + 1, "completed_ns": completed}


def test_run_cis_of_a_single_stream_log():
    lat = np.random.default_rng(1).integers(100_000, 200_000, 3000)
    out = ci.run_cis(_single_stream(lat), target_percentile=97)
    assert set(out["latency_ms"]) >= {"p50", "p90", "p97", "p99", "mean", "independence"}
    assert out["latency_ms"]["p50"]["estimate"] == latency_summary(lat)["latency_p50_ms"]
    rate = out["throughput"]["samples_per_second"]
    assert rate["estimate"] == pytest.approx(3000 * 1e9 / lat.sum())
    assert rate["low"] < rate["estimate"] < rate["high"]


def test_multi_sample_queries_and_streaming_columns():
    # 3 queries of 2 samples (multi_stream-like): a query's latency ends at its last sample
    rec = {"sample_index": np.arange(6), "query_index": np.array([0, 0, 1, 1, 2, 2]),
           "scheduled_ns": np.array([0, 0, 100, 100, 250, 250]), "issued_ns": np.array([1, 1, 101, 101, 251, 251]),
           "completed_ns": np.array([90, 95, 200, 240, 300, 310]),
           "first_token_ns": np.array([10, 10, 130, 130, 260, 260]), "output_tokens": np.array([3, 3, 5, 5, 1, 0])}
    assert S.query_latencies(rec).tolist() == [95, 140, 60]
    assert S.time_to_first_token(rec).tolist() == [10, 30, 10]
    # TPOT = (latency - TTFT) / (tokens - 1) over the tokens of all its samples; one-token queries have none
    assert S.time_per_output_token(rec).tolist() == [(95 - 10) / 5, (140 - 30) / 9]
    counts, gaps = S.completion_events(rec)
    assert counts.tolist() == [1, 1, 1, 1, 1, 1] and gaps.sum() == 310


def test_offline_single_query_has_throughput_only():
    n = 4096
    done = np.repeat(np.arange(1, 129) * 1_000_000, 32)
    rec = {"sample_index": np.arange(n), "query_index": np.zeros(n, dtype=np.int64), "scheduled_ns": np.zeros(n, dtype=np.int64),
           "issued_ns": np.zeros(n, dtype=np.int64), "completed_ns": done + np.random.default_rng(0).integers(0, 5000, 128).repeat(32)}
    out = ci.run_cis(rec)
    assert "latency_ms" not in out and out["queries"] == 1
    assert any("offline" in note for note in out["notes"])
    assert out["throughput"]["samples_per_second"]["n"] == 128


@pytest.mark.parametrize("bad, message", [
    ([1.0, float("nan"), 3.0], "NaN or infinite"),
    ([], "needs at least 1"),
])
def test_bad_input_is_a_clear_error(bad, message):
    with pytest.raises(AnalysisError, match=message):
        ci.percentile_ci(bad, 0.9)


def test_too_few_samples_for_a_mean_or_a_log():
    with pytest.raises(AnalysisError, match="needs at least 2"):
        ci.mean_ci([1.0])
    with pytest.raises(AnalysisError, match="no performance log"):
        ci.run_cis({name: np.empty(0, dtype=np.int64) for name in
                    ("sample_index", "query_index", "scheduled_ns", "issued_ns", "completed_ns")})
