"""Trends, change points and outliers against published examples (Mann-Kendall, Nile, NIST ESD)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from statsmodels.datasets import nile

from analysis.changepoints import detect
from analysis.outliers import generalized_esd
from analysis.trend import mann_kendall, ols_trend, period_intervals, period_table, periods_of, theil_sen, trend
from runner.errors import AnalysisError

# "A Mann-Kendall Example (by hand)", J. Little, College of the Holy Cross
# (mathcs.holycross.edu/~little/Montserrat/MannKendallByHand.txt): 14 values, one tie;
# S = 54, V = (14)(13)(33)/18 - (2)(1)(9)/18, Z = (S - 1)/sqrt(V) = 2.9058, one-sided p about .0018.
HOLY_CROSS = [12.9, 14.8, 13.2, 15.7, 13.8, 15.6, 12.9, 11.0, 17.3, 15.9, 19.0, 18.3, 20.1, 21.7]

# NIST/SEMATECH e-Handbook of Statistical Methods 1.3.5.17.3 (data of Rosner 1983, Technometrics 25(2)):
# generalised ESD with up to 10 outliers at alpha 0.05: R_i and lambda_i as printed (3 decimals), 3 outliers.
ROSNER = [float(v) for v in """-0.25 0.68 0.94 1.15 1.20 1.26 1.26 1.34 1.38 1.43 1.49 1.49 1.55 1.56 1.58 1.65 1.69
    1.70 1.76 1.77 1.81 1.91 1.94 1.96 1.99 2.06 2.09 2.10 2.14 2.15 2.23 2.24 2.26 2.35 2.37 2.40 2.47 2.54 2.62
    2.64 2.90 2.92 2.92 2.93 3.21 3.26 3.30 3.59 3.68 4.30 4.64 5.34 5.42 6.01""".split()]
NIST_R = [3.118, 2.942, 3.179, 2.810, 2.815, 2.848, 2.279, 2.310, 2.101, 2.067]
NIST_LAMBDA = [3.158, 3.151, 3.143, 3.136, 3.128, 3.120, 3.111, 3.103, 3.094, 3.085]


def test_mann_kendall_matches_the_worked_example():
    mk = mann_kendall(HOLY_CROSS)
    assert mk.s == 54
    assert mk.var_s == pytest.approx(14 * 13 * 33 / 18 - 2 * 1 * 9 / 18)
    assert mk.z == pytest.approx(2.9058, abs=1e-4)
    assert mk.p_value / 2 == pytest.approx(0.0018, abs=1e-4)  # the example's one-sided p
    assert mk.trend == "increasing"


def test_theil_sen_is_the_median_pairwise_slope():
    y = np.array(HOLY_CROSS)
    x = np.arange(len(y), dtype=float)
    slopes = [(y[j] - y[i]) / (j - i) for i, j in itertools.combinations(range(len(y)), 2)]
    result = theil_sen(x, y)
    assert result["slope"] == pytest.approx(np.median(slopes))
    assert result["low"] < result["slope"] < result["high"]


def test_nile_has_one_change_point_after_1898():
    volume = nile.load_pandas().data["volume"].to_numpy(float)
    for method in ("pelt", "binseg"):
        (cp,) = [c for c in detect(volume, method=method) if c.confirmed]
        assert cp.index == 28  # after the 28th observation, 1898
        assert cp.before_mean == pytest.approx(1097.75)
        assert cp.after_mean == pytest.approx(849.97, abs=0.005)
    # ruptures' default jump=5 can only cut at multiples of 5: it lands on 30
    assert [c.index for c in detect(volume, jump=5) if c.confirmed] == [30]


def test_noise_rarely_confirms_a_change_point():
    # 200 series of independent noise: confirming with the split selection repeated under permutation
    # keeps the false alarms near alpha (each series may propose candidates, few survive)
    rng = np.random.default_rng(3)
    alarms = sum(any(c.confirmed for c in detect(rng.normal(100, 1, 60))) for _ in range(200))
    assert alarms / 200 <= 0.08


def test_a_clear_shift_is_found_where_it_is():
    x = np.random.default_rng(4).normal(0, 1, 80)
    x[50:] += 3
    (cp,) = [c for c in detect(x) if c.confirmed]
    assert cp.index == 50 and cp.q_value < 0.01


def test_generalized_esd_matches_nist():
    result = generalized_esd(ROSNER, max_outliers=10, alpha=0.05)
    assert result.statistics == pytest.approx(NIST_R, abs=1.5e-3)
    assert result.critical_values == pytest.approx(NIST_LAMBDA, abs=1.5e-3)
    assert sorted(ROSNER[i] for i in result.outliers) == [5.34, 5.42, 6.01]


def _history(growth=0.05, quarters=8, per_quarter=3, seed=0, **group):
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(quarters):
        start = pd.Timestamp("2024-01-01", tz="UTC") + pd.DateOffset(months=3 * q)
        for k in range(per_quarter):
            rows.append({"started_at": start + pd.Timedelta(days=10 * k + 1), "run_id": len(rows) + 1,
                         "value": 1000 * (1 + growth) ** q * np.exp(rng.normal(0, 0.01)), **group})
    return pd.DataFrame(rows)


def test_quarterly_trend_recovers_the_growth_rate():
    (result,) = trend(_history(), "quarter", group_by=())
    assert len(result["periods"]) == 8 and result["periods"][0]["period"] == "2024Q1"
    ts = result["theil_sen"]
    assert ts["change_low"] < 0.05 < ts["change_high"] and ts["change_per_period"] == pytest.approx(0.05, abs=0.01)
    assert result["mann_kendall"]["trend"] == "increasing" and result["mann_kendall"]["s"] == 28
    change = result["period_changes"][0]
    assert change["from"] == "2024Q1" and change["low"] < 1.05 < change["high"]


def test_gaps_between_periods_keep_calendar_spacing():
    df = _history(quarters=6).iloc[[0, 1, 2, 12, 13, 14, 15, 16, 17]]  # quarters 1, 5, 6
    table = period_table(df, "quarter")
    assert table["index"].tolist() == [0, 4, 5]


def test_period_intervals_are_t_intervals_of_geometric_means_by_hand():
    times = pd.Series(pd.to_datetime(["2026-01-05", "2026-02-01", "2026-04-01", "2026-04-02"], utc=True))
    df = pd.DataFrame({"system": ["a", "a", "a", "b"], "value": [2.0, 8.0, 3.0, 5.0]})
    df["quarter"] = periods_of(times, "quarter")
    table = period_intervals(df, "quarter", group_by=["system"], confidence=0.95)
    assert [(r.system, str(r.quarter), r.runs) for r in table.itertuples()] == [
        ("a", "2026Q1", 2), ("a", "2026Q2", 1), ("b", "2026Q2", 1)]
    # 2 and 8: geometric mean 4; sd of the logs ln(4)/sqrt(2); t(0.975, 1 df) = 12.7062047 (tables):
    # half-width 12.7062047 * ln(4) / 2 on the log scale
    half = 12.7062047 * np.log(4) / 2
    first = table.iloc[0]
    assert first["gmean"] == pytest.approx(4) and first["low"] == pytest.approx(4 * np.exp(-half), rel=1e-6)
    assert first["high"] == pytest.approx(4 * np.exp(half), rel=1e-6)
    assert table.iloc[1][["low", "high"]].isna().all()  # one run: no interval
    assert str(periods_of(times, "month")[1]) == "2026-02"


def test_ols_switches_to_hac_under_serial_correlation():
    rng = np.random.default_rng(8)
    e = np.zeros(60)
    for t in range(1, 60):
        e[t] = 0.9 * e[t - 1] + rng.normal()
    x = np.arange(60.0)
    correlated = ols_trend(x, 0.1 * x + e)
    assert correlated["covariance"].startswith("HAC") and correlated["breusch_godfrey_p"] < 0.05
    plain = ols_trend(x, 0.1 * x + rng.normal(size=60))
    assert plain["covariance"] == "nonrobust" and plain["low"] < 0.1 < plain["high"]


def test_groups_are_analysed_separately():
    df = pd.concat([_history(0.05, task="a", scenario="offline"), _history(-0.05, seed=1, task="b", scenario="offline")])
    results = {r["group"]["task"]: r for r in trend(df, "quarter", group_by=("task", "scenario"))}
    assert results["a"]["mann_kendall"]["trend"] == "increasing"
    assert results["b"]["mann_kendall"]["trend"] == "decreasing"


def test_short_and_bad_histories():
    (short,) = trend(_history(quarters=2), "quarter", group_by=())
    assert "theil_sen" not in short and "need 3" in short["notes"][0]
    with pytest.raises(AnalysisError, match="empty"):
        trend(_history().iloc[:0], "quarter")
    bad = _history()
    bad.loc[3, "value"] = np.nan
    with pytest.raises(AnalysisError, match="NaN"):
        trend(bad, "quarter", group_by=())
    with pytest.raises(AnalysisError, match="unknown period"):
        trend(_history(), "fortnight", group_by=())
    with pytest.raises(AnalysisError, match="needs at least 10"):
        detect([1.0, 2.0, 3.0])


def test_history_change_points_and_outlier_runs_name_the_runs():
    df = _history(growth=0.0, quarters=8, per_quarter=4)  # runs 1..32, one level
    df.loc[df["run_id"] > 16, "value"] *= 1.3               # a 30% step after run 16
    df.loc[df["run_id"] == 6, "value"] *= 3                 # one wild run: flagged, not dropped
    (result,) = trend(df, "quarter", group_by=())
    assert [c["after_run"] for c in result["change_points"] if c["confirmed"]] == [16]
    assert result["outlier_runs"] == [6] and result["runs"] == 32
