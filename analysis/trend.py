"""Trends of run figures over time, by period (a quarter by default), per task/scenario/system/backend.

Periods are calendar periods of the runs' dates (`periods_of`), or MLPerf rounds (`by="round"`, for
imported results: the frame's `round` column; rounds are spaced as MLCommons publishes them, two a
year, so v4.0, v4.1, v5.0, v5.1 are consecutive periods).

Per group, the runs of each period are summarised by their geometric mean, and over the periods:
- Theil-Sen slope (Theil 1950, Sen 1968; `scipy.stats.theilslopes`) of the log figure per period,
  with its CI, reported as a relative change per period;
- the Mann-Kendall test (Mann 1945, Kendall 1975), implemented here: S = sum_{i<j} sign(x_j - x_i),
  Var(S) = [n(n-1)(2n+5) - sum_t t(t-1)(2t+5)] / 18 over groups of t tied values,
  Z = (S - sign(S)) / sqrt(Var S) (continuity correction), p = 2 (1 - Phi(|Z|)) (Gilbert 1987, 16.4);
- OLS of the log figure on the period, with Newey-West HAC standard errors (maxlags
  floor(4 (n/100)^(2/9))) when the Breusch-Godfrey test finds serially correlated residuals;
- period-over-period change: ratio of consecutive geometric means with the Welch interval on
  logs (`analysis.compare.ratio_of_geometric_means`) when both periods have 2+ runs;
- change points over the run series (`analysis.changepoints.detect`) and outlier runs
  (`analysis.outliers.generalized_esd`), flagged, never dropped.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.diagnostic import acorr_breusch_godfrey
from statsmodels.tools.sm_exceptions import SingularMatrixWarning

from analysis import changepoints
from analysis._checks import finite, lower_is_better, names, positive
from analysis.compare import ratio_of_geometric_means
from analysis.outliers import generalized_esd
from runner.errors import AnalysisError

__all__ = ["MannKendall", "mann_kendall", "theil_sen", "ols_trend", "period_table", "period_intervals", "periods_of",
           "period_labels", "round_ordinal", "trend", "fit_line",
           "PERIODS", "GROUP_COLUMNS", "MLPERF_GROUP_COLUMNS"]

PERIODS = {"quarter": "Q", "month": "M", "year": "Y", "week": "W", "day": "D"}  # and "round" (period_labels)
GROUP_COLUMNS = ("task", "model_variant", "scenario", "system", "backend", "metric")
# Imported MLPerf results: comparable identity (system is accelerator model x count per node, or the host
# CPU of CPU-only systems, and nodes: analysis.load.mlperf_identity), division, one metric semantics.
MLPERF_GROUP_COLUMNS = ("task", "model_variant", "scenario", "system", "division", "metric")


@dataclass(frozen=True)
class MannKendall:
    """Mann-Kendall S, Var(S) with the ties correction, Z, two-sided p, Kendall's tau and the direction."""

    s: int
    var_s: float
    z: float
    p_value: float
    tau: float
    n: int
    trend: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mann_kendall(values: Any, alpha: float = 0.05) -> MannKendall:
    """Mann-Kendall trend test of a series in time order (normal approximation, ties corrected)."""
    x = finite(values, "series for Mann-Kendall", 3).astype(np.float64)
    n = len(x)
    s = int(sum(np.sign(x[i + 1:] - x[i]).sum() for i in range(n - 1)))
    _, ties = np.unique(x, return_counts=True)
    var_s = (n * (n - 1) * (2 * n + 5) - float((ties * (ties - 1) * (2 * ties + 5)).sum())) / 18
    z = 0.0 if s == 0 or var_s == 0 else (s - math.copysign(1, s)) / math.sqrt(var_s)
    p = float(2 * stats.norm.sf(abs(z)))
    direction = "none" if p >= alpha else ("increasing" if s > 0 else "decreasing")
    return MannKendall(s, var_s, z, p, s / (n * (n - 1) / 2), n, direction)


def theil_sen(x: Any, y: Any, confidence: float = 0.95) -> dict[str, float]:
    """Theil-Sen slope of y on x with Sen's CI (scipy.stats.theilslopes) and the median intercept."""
    xv, yv = finite(x, "Theil-Sen x", 2).astype(float), finite(y, "Theil-Sen y", 2).astype(float)
    res = stats.theilslopes(yv, xv, alpha=confidence)
    return {"slope": float(res.slope), "intercept": float(res.intercept), "low": float(res.low_slope),
            "high": float(res.high_slope), "confidence": confidence}


def _breusch_godfrey_p(fit: Any) -> float | None:
    """Breusch-Godfrey's p-value for serial correlation of the residuals (1 lag), or None where its auxiliary
    regression is rank-deficient (a short series with repeated x: the test cannot tell, so it is not run)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingularMatrixWarning)
        try:
            return float(acorr_breusch_godfrey(fit, nlags=1, result_object=True).lmpval)
        except SingularMatrixWarning:
            return None


def ols_trend(x: Any, y: Any, confidence: float = 0.95, alpha: float = 0.05) -> dict[str, Any]:
    """OLS slope of y on x; Newey-West HAC errors when Breusch-Godfrey rejects serial independence."""
    xv, yv = finite(x, "OLS x", 3).astype(float), finite(y, "OLS y", 3).astype(float)
    design = sm.add_constant(xv)
    fit = sm.OLS(yv, design).fit()
    bg_p = None
    if len(yv) >= 5:
        bg_p = _breusch_godfrey_p(fit)
    cov = "nonrobust"
    if bg_p is not None and bg_p < alpha:
        maxlags = max(1, math.floor(4 * (len(yv) / 100) ** (2 / 9)))
        fit = sm.OLS(yv, design).fit(cov_type="HAC", cov_kwds={"maxlags": maxlags})
        cov = f"HAC (Newey-West, {maxlags} lag{'s' if maxlags > 1 else ''})"
    low, high = fit.conf_int(1 - confidence)[1]
    return {"slope": float(fit.params[1]), "se": float(fit.bse[1]), "low": float(low), "high": float(high),
            "p_value": float(fit.pvalues[1]), "covariance": cov, "breusch_godfrey_p": bg_p}


def periods_of(times: pd.Series, by: str = "quarter") -> pd.PeriodIndex:
    """The period (UTC) of each timestamp: `by` is a name in PERIODS or a pandas period alias."""
    freq = PERIODS.get(by, by)
    ts = pd.to_datetime(times, utc=True).dt.tz_convert(None)
    try:
        return pd.PeriodIndex(ts.dt.to_period(freq))
    except ValueError:
        raise AnalysisError(f"unknown period {by!r}; use one of {', '.join(PERIODS)}, round (MLPerf results) "
                            f"or a pandas period alias") from None


def round_ordinal(name: str) -> int:
    """An MLPerf round as a period number: two rounds a year, so v4.1 follows v4.0 and v5.0 follows v4.1."""
    try:
        major, minor = (int(x) for x in str(name).lstrip("v").split("."))
    except ValueError:
        raise AnalysisError(f"{name!r} is not an MLPerf round (vX.Y)") from None
    return 2 * major + minor


def period_labels(df: pd.DataFrame, by: str = "quarter",
                  time: str = "started_at") -> tuple[np.ndarray, np.ndarray]:
    """(period label, period number) of each row: its calendar period, or its MLPerf round for by="round"."""
    if by == "round":
        if "round" not in df or df["round"].isna().any():
            raise AnalysisError("trend by round: only results imported from MLPerf have a round "
                                "(use --source mlperf)")
        labels = df["round"].astype(str).to_numpy()
        return labels, np.array([round_ordinal(r) for r in labels])
    periods = periods_of(df[time], by)
    return np.array([str(p) for p in periods]), np.array([p.ordinal for p in periods])


def period_table(df: pd.DataFrame, by: str = "quarter", value: str = "value", time: str = "started_at") -> pd.DataFrame:
    """One row per period with runs: period, ordinal offset from the first, runs, geometric mean, median."""
    logs = np.log(positive(df[value].to_numpy(), f"{value} of the runs"))
    labels, ordinals = period_labels(df, by, time)
    frame = pd.DataFrame({"ordinal": ordinals, "period": labels, "log": logs})
    grouped = frame.groupby(["ordinal", "period"], sort=True)["log"]
    table = pd.DataFrame({"runs": grouped.size(), "gmean": np.exp(grouped.mean()),
                          "median": np.exp(grouped.median())}).reset_index()
    table["index"] = table["ordinal"] - table["ordinal"].iloc[0]
    return table.drop(columns=["ordinal"])


def period_intervals(df: pd.DataFrame, period: str = "period", *, group_by: Sequence[str] = GROUP_COLUMNS,
                     value: str = "value", confidence: float = 0.95) -> pd.DataFrame:
    """Per group and period (`period` names a column of periods, e.g. from periods_of): the runs, the
    geometric mean of their figures and its t interval on the logs (low/high NaN with a single run:
    the run, not the sample, is the unit of replication)."""
    keys = [*group_by, period]
    frame = df.assign(_log=np.log(positive(df[value].to_numpy(), f"{value} of the runs")))
    table = (frame.groupby(keys, sort=True, dropna=False, observed=True)["_log"]
             .agg(runs="size", mean="mean", sd="std").reset_index())
    n = table["runs"].to_numpy()
    t = np.where(n >= 2, stats.t.ppf((1 + confidence) / 2, np.maximum(n - 1, 1)), np.nan)
    half = t * table["sd"].fillna(0).to_numpy() / np.sqrt(n)
    table["gmean"] = np.exp(table["mean"])
    table["low"], table["high"] = np.exp(table["mean"] - half), np.exp(table["mean"] + half)
    return table.drop(columns=["mean", "sd"])


def _period_changes(df: pd.DataFrame, periods: np.ndarray, table: pd.DataFrame, value: str,
                    confidence: float) -> list[dict[str, Any]]:
    changes = []
    for prev, cur in zip(table["period"].iloc[:-1], table["period"].iloc[1:]):
        a, b = df[value].to_numpy()[periods == prev], df[value].to_numpy()[periods == cur]
        row: dict[str, Any] = {"from": str(prev), "to": str(cur), "ratio": float(np.exp(np.log(b).mean() - np.log(a).mean()))}
        if min(len(a), len(b)) >= 2 and (np.ptp(a) > 0 or np.ptp(b) > 0):
            ci, _ = ratio_of_geometric_means(a, b, confidence)
            row.update(low=ci.low, high=ci.high)
        else:
            row.update(low=None, high=None, note="a CI needs 2+ runs in both periods")
        changes.append(row)
    return changes


def _series_checks(values: np.ndarray) -> dict[str, Any]:
    logs = np.log(values)
    out: dict[str, Any] = {"change_points": [], "outlier_runs": []}
    if len(logs) >= 2 * changepoints.MIN_SIZE:
        out["change_points"] = [c.to_dict() for c in changepoints.detect(logs)]
    if len(logs) >= 6:
        out["outlier_runs"] = generalized_esd(logs, max_outliers=max(1, len(logs) // 10)).outliers
    return out


def trend_of_group(df: pd.DataFrame, by: str = "quarter", value: str = "value", time: str = "started_at",
                   confidence: float = 0.95) -> dict[str, Any]:
    """The trend analysis of one group's runs (see the module docstring)."""
    if df.empty:
        raise AnalysisError("trend: the history is empty (no runs with a figure)")
    df = df.sort_values(time, kind="stable")
    periods = period_labels(df, by, time)[0]
    table = period_table(df, by, value, time)
    out: dict[str, Any] = {"by": by, "runs": len(df), "periods": [
        {"period": str(r.period), "runs": int(r.runs), "gmean": float(r.gmean), "median": float(r.median)}
        for r in table.itertuples()], "notes": []}
    out["period_changes"] = _period_changes(df, periods, table, value, confidence)
    if len(table) >= 3:
        x, logs = table["index"].to_numpy(float), np.log(table["gmean"].to_numpy())
        ts = theil_sen(x, logs, confidence)
        out["theil_sen"] = {**ts, "change_per_period": math.expm1(ts["slope"]), "change_low": math.expm1(ts["low"]),
                            "change_high": math.expm1(ts["high"])}
        out["mann_kendall"] = mann_kendall(table["gmean"].to_numpy(), 1 - confidence).to_dict()
        out["ols"] = ols_trend(x, logs, confidence, 1 - confidence)
    else:
        out["notes"].append(f"{len(table)} period(s) with runs: slope and trend tests need 3")
    checks = _series_checks(df[value].to_numpy(dtype=float))
    ids = df["run_id"].to_numpy() if "run_id" in df else np.arange(len(df))
    out["change_points"] = [{**c, "after_run": int(ids[c["index"] - 1])} for c in checks["change_points"]]
    out["outlier_runs"] = [int(ids[i]) for i in checks["outlier_runs"]]
    times = pd.to_datetime(df[time], utc=True).dt.tz_convert(None)
    out["points"] = [{"run_id": int(i), "started_at": t.isoformat(), "value": float(v), "outlier": int(i) in
                      out["outlier_runs"]} for i, t, v in zip(ids, times, df[value].to_numpy(dtype=float))]
    out["fit"] = fit_line(out)
    return out


def _when(first: pd.Period, offset: float) -> pd.Timestamp:
    """The time `offset` periods after the middle of `first` (fractions between consecutive middles)."""
    whole = math.floor(offset)
    a, b = (first + whole + i for i in (0, 1))
    ma, mb = (p.start_time + (p.end_time - p.start_time) / 2 for p in (a, b))
    return ma + (offset - whole) * (mb - ma)


def fit_line(result: dict[str, Any], points: int = 30) -> list[dict[str, Any]]:
    """A group's Theil-Sen fit (trend_of_group's result) as `points` points from the middle of its first period
    to its last: when (ISO time), fit, and the band between the lines through the median point at the
    interval's slopes (Sen's interval is one of slopes), back on the figure's scale. Empty without a fit,
    and for MLPerf rounds (they are not calendar periods)."""
    ts = result.get("theil_sen")
    if not ts or result["by"] == "round":
        return []
    freq = PERIODS.get(result["by"], result["by"])
    periods = [pd.Period(p["period"], freq=freq) for p in result["periods"]]
    xs = np.linspace(0, periods[-1].ordinal - periods[0].ordinal, points)
    xm = float(np.median([p.ordinal - periods[0].ordinal for p in periods]))
    ym = ts["intercept"] + ts["slope"] * xm
    lines = np.exp([ts["intercept"] + ts["slope"] * xs, ym + ts["low"] * (xs - xm), ym + ts["high"] * (xs - xm)])
    return [{"when": _when(periods[0], x).isoformat(), "fit": float(f), "low": float(lo), "high": float(hi)}
            for x, f, lo, hi in zip(xs, lines[0], lines[1:].min(axis=0), lines[1:].max(axis=0))]


def trend(df: pd.DataFrame, by: str = "quarter", *, group_by: Sequence[str] = GROUP_COLUMNS, value: str = "value",
          time: str = "started_at", confidence: float = 0.95) -> list[dict[str, Any]]:
    """Trends per group (task, variant, scenario, system, backend, metric by default), one dict each."""
    missing = [c for c in (value, time) if c not in df.columns]
    if missing:
        raise AnalysisError(f"trend: no column {names(missing)}")
    if df.empty:
        raise AnalysisError("trend: the history is empty (no runs with a figure match)")
    keys = [c for c in group_by if c in df.columns]
    results = []
    for key, group in (df.groupby(keys, sort=True, dropna=False) if keys else [((), df)]):
        key = key if isinstance(key, tuple) else (key,)
        entry = {"group": dict(zip(keys, key))}
        if "metric" in entry["group"]:
            entry["lower_is_better"] = lower_is_better(entry["group"]["metric"], group.get("units", pd.Series([None])).iloc[0])
        results.append({**entry, **trend_of_group(group, by, value, time, confidence)})
    return results
