"""The pieces of the quarterly trend report: per-quarter intervals, change points on the time axis,
leaderboards, reproducibility per configuration, and the trend chart of one task and scenario.

Statistics come from analysis/ (trend, change points, reproducibility); the one figure it does not
give, the interval of a quarter's geometric mean, is Student's t interval on the log figures of
that quarter's runs (the one-sample form of the Welch interval `analysis.compare` puts on ratios),
exponentiated: exp(mean(log x) +- t_{n-1} sd(log x) / sqrt(n)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import altair as alt
import numpy as np
import pandas as pd

from analysis.repro import DEFAULT_TOLERANCE, reproducibility
from analysis.trend import GROUP_COLUMNS, PERIODS
from reports import charts

if TYPE_CHECKING:
    from analysis.services import TrendSeries

__all__ = ["label_of", "change_points", "leaderboard", "leaders_by_quarter",
           "config_repro", "trend_chart", "series_chart", "has_figures", "KEYS"]

KEYS = list(GROUP_COLUMNS)


def label_of(group: dict[str, Any]) -> str:
    """A series' name in a chart and a table: system / backend / model variant."""
    return f"{group['system']} / {group['backend']} / {group['model_variant']}"


def change_points(result: dict[str, Any], runs: pd.DataFrame) -> list[dict[str, Any]]:
    """The confirmed change points of a group's trend (indices into its runs in time order) with the
    date and quarter of the first run after each, and the change as a ratio of geometric means."""
    out = []
    for cp in result.get("change_points", []):
        if not cp["confirmed"] or cp["index"] >= len(runs):
            continue
        first = runs.iloc[cp["index"]]
        out.append({"date": pd.Timestamp(first["started_at"]).tz_convert(None), "quarter": str(first["quarter"]),
                    "run_id": int(first["run_id"]), "ratio": float(np.exp(cp["after_mean"] - cp["before_mean"])),
                    "q_value": cp["q_value"], "before_n": cp["before_n"], "after_n": cp["after_n"]})
    return out


def _ranked(rows: pd.DataFrame, lower_is_better: bool) -> pd.DataFrame:
    return rows.sort_values("gmean", ascending=lower_is_better, kind="stable").assign(
        rank=np.arange(1, len(rows) + 1))


def leaderboard(intervals: pd.DataFrame, quarter: pd.Period, lower_is_better: bool) -> list[dict[str, Any]]:
    """The series of one panel ranked by their geometric mean in `quarter`, with last quarter's rank."""
    now = _ranked(intervals[intervals["quarter"] == quarter], lower_is_better)
    before = _ranked(intervals[intervals["quarter"] == quarter - 1], lower_is_better)
    previous = dict(zip(before["label"], before["rank"]))
    out = []
    for row in now.itertuples():
        was = previous.get(row.label)
        out.append({"rank": int(row.rank), "label": row.label, "gmean": float(row.gmean), "low": _num(row.low),
                    "high": _num(row.high), "runs": int(row.runs), "previous_rank": was,
                    "move": None if was is None else int(was - row.rank)})
    return out


def leaders_by_quarter(intervals: pd.DataFrame, lower_is_better: bool, last: int = 8) -> list[dict[str, Any]]:
    """The best series of each of the last `last` quarters of a panel, with the runs behind it."""
    out = []
    for quarter in sorted(intervals["quarter"].unique())[-last:]:
        rows = _ranked(intervals[intervals["quarter"] == quarter], lower_is_better)
        best = rows.iloc[0]
        out.append({"quarter": str(quarter), "label": best["label"], "gmean": float(best["gmean"]),
                    "runs": int(best["runs"]), "series": len(rows)})
    return out


def _num(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def config_repro(runs: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE,
                 confidence: float = 0.95) -> list[dict[str, Any]]:
    """Reproducibility (analysis.repro.reproducibility on run-level figures) of every configuration
    with 2+ runs among `runs`: verdict, run-to-run CV, largest deviation from the median, runs needed."""
    out = []
    for key, group in runs.groupby("config_key", sort=True):
        if len(group) < 2:
            continue
        first = group.iloc[0]
        verdict = reproducibility(pd.DataFrame({"value": group["value"].to_numpy(float),
                                                "run": group["run_id"].astype(str).to_numpy()}),
                                  levels=(), run_value=None, tolerance=tolerance, confidence=confidence)
        out.append({"config_key": key, "label": label_of(first), "task": first["task"], "scenario": first["scenario"],
                    "metric": first["metric"], "runs": len(group), "median": verdict["median"], "cv": verdict["cv"],
                    "max_deviation": verdict["max_deviation"], "reproducible": verdict["reproducible"],
                    "runs_needed": verdict["runs_needed"], "outliers": verdict["outliers"],
                    "verdict": verdict["verdict"]})
    return out


def has_figures(intervals: pd.DataFrame) -> bool:
    """Whether a panel's chart rows hold a finite figure to draw (a chart without one has an infinite domain)."""
    return bool(len(intervals)) and bool(np.isfinite(intervals["gmean"].to_numpy(dtype=float)).any())


def trend_chart(intervals: pd.DataFrame, cps: Sequence[dict[str, Any]], quarter: pd.Period, metric: str,
                log: bool) -> alt.LayerChart:
    """Quarterly geometric means (line) with their intervals (band) per series, the chosen quarter
    highlighted, and confirmed change points as dashed rules at the quarter of the first run after each."""
    data = pd.DataFrame({"series": intervals["label"].to_numpy(), "quarter": intervals["quarter"].astype(str),
                         "gmean": intervals["gmean"].to_numpy(dtype=float),
                         "low": intervals["low"].to_numpy(dtype=float),
                         "high": intervals["high"].to_numpy(dtype=float), "runs": intervals["runs"].to_numpy()})
    data = data[np.isfinite(data["gmean"])]
    banded = data[np.isfinite(data["low"]) & np.isfinite(data["high"])]
    first = min(intervals["quarter"]) if len(intervals) else quarter
    order = [str(p) for p in pd.period_range(first, quarter, freq="Q")]
    names = list(dict.fromkeys(data["series"]))
    colour = alt.Color("series:N", scale=alt.Scale(domain=names), title=None,
                       legend=alt.Legend(orient="bottom", columns=1, labelLimit=600, symbolOpacity=1))
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
    x = alt.X("quarter:O", sort=order, scale=alt.Scale(domain=order), title="quarter", axis=alt.Axis(labelAngle=0))
    y = alt.Y("gmean:Q", title=f"{metric}{' (log scale)' if log else ''}", scale=scale)
    step = max(8.0, charts.WIDTH / max(len(order), 1) * 0.9)
    shade = alt.Chart(pd.DataFrame({"quarter": [str(quarter)]})).mark_bar(
        color="#dfe6ef", width=step, opacity=0.6).encode(x=x, tooltip=["quarter:N"])
    band = alt.Chart(banded).mark_area(opacity=0.18).encode(x=x, y=alt.Y("low:Q", scale=scale), y2="high:Q",
                                                          color=colour)
    line = alt.Chart(data).mark_line(point=True, strokeWidth=1.5).encode(
        x=x, y=y, color=colour, tooltip=["series:N", "quarter:N", alt.Tooltip("gmean:Q", format=".4g"),
                                         alt.Tooltip("low:Q", format=".4g"), alt.Tooltip("high:Q", format=".4g"),
                                         "runs:Q"])
    layers = [shade, band, line] if len(banded) else [shade, line]
    if cps:
        marks = pd.DataFrame({"series": [c["series"] for c in cps], "quarter": [c["quarter"] for c in cps],
                              "change": [f"x{c['ratio']:.3g}" for c in cps],
                              "detail": [f"x{c['ratio']:.4g} from run {c['run_id']} ({c['date']:%Y-%m-%d})"
                                         for c in cps],
                              "row": [2 + 11 * (i % 4) for i in range(len(cps))]})
        layers.append(alt.Chart(marks).mark_rule(strokeDash=[5, 3], strokeWidth=1.5).encode(
            x=x, color=colour, tooltip=["series:N", "detail:N"]))
        layers.append(alt.Chart(marks).mark_text(align="left", dx=3, baseline="top", fontSize=9).encode(
            x=x, y=alt.Y("row:Q", scale=None), text="change:N", color=colour))
    return alt.layer(*layers).properties(width=charts.WIDTH, height=charts.HEIGHT + 30)


def series_chart(series: TrendSeries) -> alt.LayerChart:
    """One series' trend (a record of analysis.services.trend): its runs as points (outliers in orange), the
    period geometric means joined by a line, the Theil-Sen fit with its band (dashed, shaded), and change
    points as rules (solid: confirmed; dashed: candidates not confirmed). Draws the record; computes nothing."""
    runs = pd.DataFrame(series.points).assign(started_at=lambda f: pd.to_datetime(f["started_at"]))
    means = pd.DataFrame({"when": [_middle(p["period"], series.by) for p in series.periods],
                          "gmean": [p["gmean"] for p in series.periods],
                          "period": [p["period"] for p in series.periods]})
    low, high = float(runs["value"].min()), float(runs["value"].max())
    pad = (high - low) * 0.1 or abs(high) * 0.05 or 1.0  # one value (or equal ones): a band around it
    y = alt.Y("value:Q", title=str(series.group.get("metric")),
              scale=alt.Scale(zero=False, domain=[low - pad, high + pad]), axis=alt.Axis(format=",.4~g"))
    layers = [alt.Chart(runs).mark_point(filled=True, size=45, opacity=0.7).encode(
        x=alt.X("started_at:T", title="started"), y=y,
        color=alt.Color("outlier:N", scale=alt.Scale(domain=[False, True], range=["#1f6fb2", "#d9822b"])),
        tooltip=["run_id:Q", "started_at:T", alt.Tooltip("value:Q", format=".4g"), "outlier:N"])]
    if means["when"].notna().all():
        layers.append(alt.Chart(means).mark_line(point=True, color="#6b6b6b").encode(
            x="when:T", y=alt.Y("gmean:Q"), tooltip=["period:N", alt.Tooltip("gmean:Q", format=".4g")]))
    if series.fit:
        fit = pd.DataFrame(series.fit).assign(when=lambda f: pd.to_datetime(f["when"]))
        layers += [alt.Chart(fit).mark_area(opacity=0.18, color="#1f6fb2", clip=True).encode(
                       x="when:T", y="low:Q", y2="high:Q"),
                   alt.Chart(fit).mark_line(strokeDash=[6, 3], color="#1f6fb2", clip=True).encode(
                       x="when:T", y="fit:Q")]
    return alt.layer(*layers, *_change_point_rules(series, runs["started_at"])).properties(height=320)


def _middle(period: str, by: str) -> pd.Timestamp | None:
    """The middle of a calendar period ('2026Q3' by quarter); None for an MLPerf round."""
    if by == "round":
        return None
    p = pd.Period(period, freq=PERIODS.get(by, by))
    return p.start_time + (p.end_time - p.start_time) / 2


def _change_point_rules(series: TrendSeries, times: pd.Series) -> list[alt.Chart]:
    """A rule half-way between the runs either side of each change point, labelled with its level shift."""
    cps = [{"when": times.iloc[c["index"] - 1] + (times.iloc[c["index"]] - times.iloc[c["index"] - 1]) / 2,
            "confirmed": c["confirmed"],
            "label": f"x{math.exp(c['after_mean'] - c['before_mean']):.3g} (q {c['q_value']:.2g})"}
           for c in series.change_points if 0 < c["index"] < len(times)]
    if not cps:
        return []
    rules = alt.Chart(pd.DataFrame(cps))
    return [rules.mark_rule(color="#c0392b").encode(
        x="when:T", strokeDash=alt.condition("datum.confirmed", alt.value([1, 0]), alt.value([4, 3])),
        tooltip=["when:T", "label:N", "confirmed:N"]),
        rules.mark_text(align="left", dx=3, dy=-6, color="#c0392b", fontSize=10).encode(
            x="when:T", y=alt.value(8), text="label:N")]
