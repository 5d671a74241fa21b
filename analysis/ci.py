"""Within-run confidence intervals: percentiles, mean latency and throughput, with an independence check.

Methods:
- Percentiles: the exact distribution-free order-statistic interval (Thompson 1936; the interval of
  `scipy.stats.quantile_test(...).confidence_interval`, equal-tailed): ranks from the Binomial(n, p)
  quantiles, values found with one `np.partition` (O(n), no full sort). The achieved coverage is
  P(lo < B <= hi) for B ~ Binomial(n, p); when n is too small for a bound, the bound is None and
  `needs_n` says how many samples would give one. The point estimate is LoadGen's percentile
  (`runner.loadgen.result.loadgen_percentile`), the figure the run summary reports.
- Percentiles of autocorrelated samples: batch quantiles (Seila 1982): the t interval over the
  percentiles of contiguous batches, each large enough (10 / (1 - p) samples) for its percentile.
- Independence: Ljung-Box Q over the first min(10, n/5) autocorrelations (Ljung & Box 1978,
  `statsmodels.tsa.stattools.q_stat`); the autocorrelations are computed directly in O(n x lags).
- Mean and throughput: BCa bootstrap (Efron 1987; `scipy.stats.bootstrap`) when the samples pass
  Ljung-Box and n <= BOOTSTRAP_MAX_N; otherwise non-overlapping batch means in time order with a
  Student t interval over the batches (Schmeiser 1982; Law & Kelton, Simulation Modeling and
  Analysis, 9.5.3), which stays valid under autocorrelation and costs O(n). Throughput is a ratio
  (samples / time), so its batch interval is the ratio estimator's (Cochran 1977, 6.4).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.tsa.stattools import q_stat

from analysis import samples as S
from analysis._checks import finite, require
from runner.errors import AnalysisError
from runner.loadgen.result import loadgen_percentile

__all__ = ["CI", "Independence", "run_summary", "order_statistic_ranks", "needs_samples", "percentile_ci", "percentile_cis",
           "ljung_box", "mean_ci", "batch_means_ci", "batch_quantile_ci", "throughput_ci", "run_cis", "CI_VERSION",
           "BOOTSTRAP_MAX_N", "DEFAULT_PERCENTILES"]

CI_VERSION = 1
BOOTSTRAP_MAX_N = 2_000      # above this the bootstrap's O(n x resamples) cost gives way to batch means
DEFAULT_PERCENTILES = (50.0, 90.0, 99.0)
BATCHES = 32                 # batch means: 10 to 30+ batches (Schmeiser 1982)


@dataclass(frozen=True)
class CI:
    """An estimate and its confidence interval; a bound is None when the data cannot give one."""

    estimate: float | None
    low: float | None
    high: float | None
    confidence: float
    method: str
    n: int
    coverage: float | None = None   # achieved coverage of an order-statistic interval
    needs_n: int | None = None      # samples needed for a bounded interval (when a bound is None)
    note: str = ""

    @property
    def bounded(self) -> bool:
        return self.low is not None and self.high is not None

    def in_units(self, divisor: float) -> CI:
        """The same interval in other units: estimate and bounds divided by divisor (1e6: ns to ms)."""
        div = lambda v: None if v is None else float(v) / divisor  # noqa: E731
        return replace(self, estimate=div(self.estimate), low=div(self.low), high=div(self.high))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (an empty note left out)."""
        out = asdict(self)
        if not out["note"]:
            del out["note"]
        return out


@dataclass(frozen=True)
class Independence:
    """Ljung-Box check of a series in time order: Q, its p-value, the lags, the verdict at alpha."""

    statistic: float | None
    p_value: float | None
    lags: int
    n: int
    independent: bool | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"test": "Ljung-Box", **asdict(self)}


def _check_level(q: float, confidence: float) -> None:
    if not 0 < q < 1:
        raise ValueError(f"percentile as a fraction in (0, 1) (0.9 for p90), not {q!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence in (0, 1), not {confidence!r}")


def order_statistic_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int, int, float]:
    """(lo, hi, coverage): 0-based indices of the sorted samples bounding the q-quantile, as in
    scipy.stats.quantile_test's two-sided interval; lo = -1 or hi = n where no bound exists.

    lo = ppf(a) - 1 and hi = isf(a) of Binomial(n, q) with a = (1 - confidence) / 2; the coverage
    is P(lo < B <= hi) = F(hi) - F(lo).
    """
    _check_level(q, confidence)
    a = (1 - confidence) / 2
    lo, hi = int(stats.binom.ppf(a, n, q)) - 1, int(stats.binom.isf(a, n, q))
    lo, hi = max(lo, -1), min(hi, n)
    coverage = (1.0 if hi >= n else float(stats.binom.cdf(hi, n, q))) - (
        0.0 if lo < 0 else float(stats.binom.cdf(lo, n, q)))
    return lo, hi, coverage


def needs_samples(q: float, confidence: float = 0.95) -> int:
    """Fewest samples for which the order-statistic interval of the q-quantile has both bounds."""
    a = (1 - confidence) / 2
    n = max(1, math.floor(max(math.log(a) / math.log1p(-q), math.log(a) / math.log(q))) - 2)
    while True:
        lo, hi, _ = order_statistic_ranks(n, q, confidence)
        if lo >= 0 and hi < n:
            return n
        n += 1


def percentile_ci(values: Any, q: float, confidence: float = 0.95) -> CI:
    """Order-statistic CI of the q-quantile (q a fraction: 0.99 for p99) of independent samples."""
    return percentile_cis(values, (q,), confidence)[q]


def percentile_cis(values: Any, qs: tuple[float, ...] = (0.5, 0.9, 0.99), confidence: float = 0.95) -> dict[float, CI]:
    """Order-statistic CIs of several quantiles at once: one np.partition over every rank needed."""
    arr = finite(values, "percentile samples")
    n = len(arr)
    plan = {q: order_statistic_ranks(n, q, confidence) for q in qs}
    pct = {q: round(q * 100, 9) for q in qs}
    points = {q: min(n - 1, int(n * pct[q] / 100)) for q in qs}  # loadgen_percentile's index
    kth = sorted({i for q in qs for i in (*plan[q][:2], points[q]) if 0 <= i < n})
    part = np.partition(arr, kth)
    return {q: _order_ci(part, q, plan[q], loadgen_percentile(part, pct[q]), confidence) for q in qs}


def _order_ci(part: np.ndarray, q: float, plan: tuple[int, int, float], point: Any, confidence: float) -> CI:
    n, (lo, hi, coverage) = len(part), plan
    low = float(part[lo]) if lo >= 0 else None
    high = float(part[hi]) if hi < n else None
    needs = None if low is not None and high is not None else needs_samples(q, confidence)
    note = f"needs >= {needs} samples for a bounded interval" if needs else ""
    return CI(float(point), low, high, confidence, "order statistics (exact, distribution-free)", n,
              coverage, needs, note)


def ljung_box(values: Any, lags: int | None = None, alpha: float = 0.05) -> Independence:
    """Ljung-Box test for autocorrelation of a series in time order (too short below 20 values)."""
    arr = finite(values, "series for Ljung-Box").astype(np.float64)
    n = len(arr)
    if n < 20:
        return Independence(None, None, 0, n, None, "too short to test (fewer than 20 values)")
    lags = lags or min(10, n // 5)
    d = arr - arr.mean()
    denom = float(d @ d)
    if denom == 0.0:
        return Independence(0.0, 1.0, lags, n, True, "constant series")
    r = np.array([d[:-k] @ d[k:] for k in range(1, lags + 1)]) / denom  # statsmodels' acf estimator
    q, p = q_stat(r, n)
    return Independence(float(q[-1]), float(p[-1]), lags, n, bool(p[-1] >= alpha))


def _t_interval(estimate: float, se: float, k: int, confidence: float) -> tuple[float, float]:
    half = float(stats.t.ppf((1 + confidence) / 2, k - 1)) * se
    return estimate - half, estimate + half


def batch_means_ci(values: Any, confidence: float = 0.95, batches: int = BATCHES, reason: str = "") -> CI:
    """CI of the mean from k contiguous batch means (k = min(batches, n // 5), at least 2)."""
    arr = finite(values, "samples for batch means", 10).astype(np.float64)
    n = len(arr)
    k = max(2, min(batches, n // 5))
    starts = S.split_points(n, k)
    means = np.add.reduceat(arr, starts) / np.diff(np.r_[starts, n])
    estimate = float(arr.mean())
    low, high = _t_interval(estimate, float(means.std(ddof=1)) / math.sqrt(k), k, confidence)
    return CI(estimate, low, high, confidence, f"batch means ({k} batches, t interval)", n, note=reason)


def _constant(value: float, confidence: float, n: int) -> CI:
    return CI(value, value, value, confidence, "none: every sample is equal", n)


def mean_ci(values: Any, confidence: float = 0.95, *, independent: bool | None = None,
            n_resamples: int = 2000, seed: int = 0) -> CI:
    """CI of the mean: BCa bootstrap for independent samples (n <= BOOTSTRAP_MAX_N), else batch means.

    `independent` is the caller's Ljung-Box verdict; None runs the test here.
    """
    arr = finite(values, "samples for a mean", 2).astype(np.float64)
    if arr.min() == arr.max():
        return _constant(float(arr[0]), confidence, len(arr))
    if independent is None:
        independent = ljung_box(arr).independent
    if independent is False and len(arr) >= 20:
        return batch_means_ci(arr, confidence, reason="samples are autocorrelated (Ljung-Box)")
    if len(arr) > BOOTSTRAP_MAX_N:
        return batch_means_ci(arr, confidence, reason=f"n > {BOOTSTRAP_MAX_N:,}: batch means, not the bootstrap")
    res = stats.bootstrap((arr,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="BCa",
                          rng=np.random.default_rng(seed), batch=max(1, 4_000_000 // len(arr)))
    note = "" if independent else "too short to test for autocorrelation; assumed independent"
    return CI(float(arr.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high),
              confidence, f"BCa bootstrap ({n_resamples} resamples)", len(arr), note=note)


def throughput_ci(counts: Any, gaps_ns: Any, confidence: float = 0.95, *, n_resamples: int = 2000,
                  seed: int = 0) -> CI:
    """CI of a rate per second = sum(counts) / sum(gaps) (completion events in time order, see
    `analysis.samples.completion_events`): paired BCa bootstrap of the events when their gaps pass
    Ljung-Box and there are at most BOOTSTRAP_MAX_N, else the ratio estimator over batches."""
    c = finite(counts, "completion counts", 2).astype(np.float64)
    g = finite(gaps_ns, "completion gaps", 2).astype(np.float64)
    if len(c) != len(g):
        raise AnalysisError(f"completion counts ({len(c)}) and gaps ({len(g)}) differ in length")
    estimate = float(c.sum() * 1e9 / g.sum())
    indep = ljung_box(g)
    varies = np.ptp(c / np.maximum(g, 1.0)) > 0  # a constant rate makes the bootstrap degenerate
    if indep.independent is not False and len(c) <= BOOTSTRAP_MAX_N and varies:
        ratio = lambda cc, gg, axis=-1: cc.sum(axis=axis) / gg.sum(axis=axis)  # noqa: E731
        res = stats.bootstrap((c, g), ratio, paired=True, confidence_level=confidence, n_resamples=n_resamples,
                              method="BCa", rng=np.random.default_rng(seed))
        ci = res.confidence_interval
        return CI(estimate, float(ci.low) * 1e9, float(ci.high) * 1e9, confidence,
                  f"BCa bootstrap of completion events ({n_resamples} resamples)", len(c))
    return _ratio_batches(c, g, estimate, confidence, indep)


def _ratio_batches(c: np.ndarray, g: np.ndarray, estimate: float, confidence: float, indep: Independence) -> CI:
    k = max(2, min(BATCHES, len(c) // 5))
    starts = S.split_points(len(c), k)
    cb, gb = np.add.reduceat(c, starts), np.add.reduceat(g, starts)
    ratio = cb.sum() / gb.sum()
    se = math.sqrt(float(((cb - ratio * gb) ** 2).sum()) / (k * (k - 1))) / float(gb.mean())
    low, high = _t_interval(float(ratio), se, k, confidence)
    why = "gaps are autocorrelated (Ljung-Box)" if indep.independent is False else \
        f"n > {BOOTSTRAP_MAX_N:,} events: batches, not the bootstrap"
    return CI(estimate, low * 1e9, high * 1e9, confidence, f"ratio estimator over {k} batches (t interval)",
              len(c), note=why)


def _key(pct: float) -> str:
    return f"p{pct:g}"


def batch_quantile_ci(values: Any, q: float, confidence: float = 0.95, batches: int = BATCHES,
                      estimate: float | None = None) -> CI:
    """CI of the q-quantile of an autocorrelated series from the spread of its batch quantiles
    (Seila 1982, batching for quantiles): estimate +- t x sd(batch quantiles) / sqrt(k)."""
    arr = finite(values, "samples for batch quantiles")
    per_batch = S.batch_quantiles(arr, q * 100, batches)
    k = len(per_batch)
    point = estimate if estimate is not None else float(loadgen_percentile(np.sort(arr), q * 100))
    low, high = _t_interval(point, float(per_batch.std(ddof=1)) / math.sqrt(k), k, confidence)
    return CI(point, low, high, confidence, f"batch quantiles ({k} batches, t interval)", len(arr),
              note="samples are autocorrelated (Ljung-Box)")


def _dependent_percentile(lat: np.ndarray, p: float, exact: CI, confidence: float) -> CI:
    """Batch quantiles when the run is long enough for 4+ batches, else the exact interval with a warning."""
    if len(lat) >= 4 * S.batch_size_for(p):
        return batch_quantile_ci(lat, p / 100, confidence, estimate=exact.estimate)
    return replace(exact, note=f"samples are autocorrelated (Ljung-Box) and too few ({len(lat)}) for 4 batches "
                               f"of {S.batch_size_for(p)}: this interval assumes independence and may be too narrow")


def _latency_block(lat_ns: np.ndarray, pcts: tuple[float, ...], confidence: float, seed: int,
                   with_mean: bool = True) -> dict[str, Any]:
    cis = percentile_cis(lat_ns, tuple(p / 100 for p in pcts), confidence)
    indep = ljung_box(lat_ns)
    block: dict[str, Any] = {}
    for p in pcts:
        ci = cis[p / 100]
        if indep.independent is False:
            ci = _dependent_percentile(lat_ns, p, ci, confidence)
        block[_key(p)] = ci.in_units(1e6).to_dict()
    block["independence"] = indep.to_dict()
    if with_mean:
        block["mean"] = mean_ci(lat_ns, confidence, independent=indep.independent, seed=seed).in_units(1e6).to_dict()
    return block


def run_summary(records: Any, effective_settings: dict[str, Any]) -> dict[str, Any]:
    """The `ci` summary plugin (entry point `infersight.summaries`): `run_cis` of a finished run, with the
    scenario's target percentile; the runner stores the result as summary["ci"]."""
    return run_cis(records, target_percentile=effective_settings.get("target_latency_percentile"))


def run_cis(records: Any, *, confidence: float = 0.95, percentiles: tuple[float, ...] = DEFAULT_PERCENTILES,
            target_percentile: float | None = None, seed: int = 0) -> dict[str, Any]:
    """Every within-run CI of a run's performance log, as the JSON stored in its summary under "ci".

    Latency (ms, per query): the percentiles (plus the scenario's target percentile) and the mean;
    throughput (samples/s, and tokens/s for streaming runs); TTFT and TPOT percentiles when the
    log has first-token records. A run of one query (offline) has no latency distribution, only
    throughput.
    """
    rec = S.columns(records)
    n_samples = len(rec.get("completed_ns", ()))
    require(n_samples, 1, "per-query records", "the run has no performance log to analyse")
    pcts = tuple(sorted(set(percentiles) | ({float(target_percentile)} if target_percentile else set())))
    lat = S.query_latencies(rec)
    out: dict[str, Any] = {"version": CI_VERSION, "confidence": confidence, "queries": len(lat),
                           "samples": n_samples, "notes": []}
    if len(lat) >= 2:
        out["latency_ms"] = _latency_block(lat, pcts, confidence, seed)
    else:
        out["notes"].append("one query (offline): no latency distribution to bound; throughput only")
    counts, gaps = S.completion_events(rec)
    if len(counts) >= 2:
        out["throughput"] = {"samples_per_second": throughput_ci(counts, gaps, confidence, seed=seed).to_dict()}
        if "output_tokens" in rec:
            tc, tg = S.completion_events(rec, "tokens")
            out["throughput"]["tokens_per_second"] = throughput_ci(tc, tg, confidence, seed=seed).to_dict()
    else:
        out["notes"].append("every sample completed at once: no throughput interval")
    for name, series in (("ttft_ms", S.time_to_first_token(rec)), ("tpot_ms", S.time_per_output_token(rec))):
        if series is not None and len(series) >= 2:
            out[name] = _latency_block(series, pcts, confidence, seed, with_mean=False)
    return out
