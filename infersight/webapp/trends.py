"""The Trends page: the history of a task's figures by period through the same analysis as
`infersight trend` (analysis.load.runs_frame, analysis.trend.trend): per system / backend / variant,
the Theil-Sen slope with its CI and the Mann-Kendall verdict, period-over-period changes with CIs,
change points and outlier runs, drawn as runs, period geometric means and the fitted trend with its
CI band (Altair)."""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from analysis.trend import PERIODS, trend
from infersight.webapp._data import history, history_score, pick_task_scenario, titled_history
from runner.errors import InfersightError

__all__ = ["page", "summary_table", "period_rows", "group_runs", "trend_chart", "FIGURES", "SOURCES"]

FIGURES = {"": "headline figure", "samples_per_second": "throughput (samples/s)",
           "latency_p50_ms": "p50 latency (ms)", "latency_p90_ms": "p90 latency (ms)",
           "latency_p99_ms": "p99 latency (ms)", "latency_mean_ms": "mean latency (ms)"}
SOURCES = {"": "measured and imported", "measured": "measured here", "mlperf": "imported from MLPerf"}
KEY = ("system", "backend", "model_variant", "metric")


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def label(group: dict[str, Any]) -> str:
    """A group's name: system / backend / variant / metric."""
    return " / ".join(str(group["group"].get(k)) for k in KEY)


def summary_table(groups: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per group, as `infersight trend` prints: slope per period (%) with its CI, the Mann-Kendall
    verdict, the last period-over-period change (%) with its CI, confirmed change points, outlier runs."""
    rows = []
    for g in groups:
        ts, mk = g.get("theil_sen") or {}, g.get("mann_kendall") or {}
        last = g["period_changes"][-1] if g["period_changes"] else {}
        rows.append({"group": label(g), "periods": len(g["periods"]), "runs": g["runs"],
                     "change_per_period_%": _pct(ts.get("change_per_period")), "ci_low_%": _pct(ts.get("change_low")),
                     "ci_high_%": _pct(ts.get("change_high")), "mann_kendall": mk.get("trend", "-"),
                     "mk_p": mk.get("p_value"), "last_change_%": _pct(last["ratio"] - 1) if last else None,
                     "last_low_%": _pct(last["low"] - 1) if last.get("low") is not None else None,
                     "last_high_%": _pct(last["high"] - 1) if last.get("high") is not None else None,
                     "change_points": sum(c["confirmed"] for c in g["change_points"]),
                     "outlier_runs": ", ".join(map(str, g["outlier_runs"]))})
    return pd.DataFrame(rows)


def period_rows(group: dict[str, Any]) -> pd.DataFrame:
    """The period table of one group: runs, geometric mean and median per period, and the change from
    the period before (ratio with its Welch CI on logs when both periods have 2+ runs)."""
    changes = {c["to"]: c for c in group["period_changes"]}
    rows = []
    for p in group["periods"]:
        c = changes.get(p["period"], {})
        rows.append({**p, "change_from": c.get("from"), "ratio": c.get("ratio"), "ci_low": c.get("low"),
                     "ci_high": c.get("high"), "note": c.get("note", "")})
    return pd.DataFrame(rows)


def group_runs(frame: pd.DataFrame, group: dict[str, Any]) -> pd.DataFrame:
    """The rows of `frame` in one group, in the order the analysis used (by start time), outliers marked."""
    keep = np.ones(len(frame), dtype=bool)
    for column, value in group["group"].items():
        keep &= (frame[column].isna() if pd.isna(value) else frame[column] == value).to_numpy()
    runs = frame[keep].sort_values("started_at", kind="stable").reset_index(drop=True)
    return runs.assign(outlier=runs["run_id"].isin(group["outlier_runs"]),
                       started_at=pd.to_datetime(runs["started_at"], utc=True).dt.tz_convert(None))


def _step(change: dict[str, Any]) -> float:
    """A change point's level shift as a ratio (its segment means are of log figures)."""
    return math.exp(change["after_mean"] - change["before_mean"])


def _when(first: pd.Period, offset: float) -> pd.Timestamp:
    """The time `offset` periods after the middle of `first` (fractions between consecutive middles)."""
    whole = math.floor(offset)
    a, b = (first + whole + i for i in (0, 1))
    ma, mb = (p.start_time + (p.end_time - p.start_time) / 2 for p in (a, b))
    return ma + (offset - whole) * (mb - ma)


def trend_chart(runs: pd.DataFrame, group: dict[str, Any]) -> alt.LayerChart:
    """Runs as points (outliers in orange), period geometric means joined by a line, the Theil-Sen fit
    with its CI band (lines through the median point at the interval's slopes, as Sen's interval is one
    of slopes), and change points as rules (solid: confirmed; dashed: candidates not confirmed)."""
    freq = PERIODS.get(group["by"], group["by"])
    periods = [pd.Period(p["period"], freq=freq) for p in group["periods"]]
    means = pd.DataFrame({"when": [_when(p, 0) for p in periods], "gmean": [p["gmean"] for p in group["periods"]],
                          "period": [str(p) for p in periods]})
    metric = str(group["group"].get("metric"))
    values = runs["value"].astype(float)
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.1 or abs(high) * 0.05 or 1.0  # one value (or equal ones): a band around it
    y = alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False, domain=[low - pad, high + pad]),
              axis=alt.Axis(format=",.4~g"))
    layers = [alt.Chart(runs).mark_point(filled=True, size=45, opacity=0.7).encode(
        x=alt.X("started_at:T", title="started"), y=y,
        color=alt.Color("outlier:N", scale=alt.Scale(domain=[False, True], range=["#1f6fb2", "#d9822b"])),
        tooltip=["run_id:Q", "started_at:T", alt.Tooltip("value:Q", format=".4g"), "outlier:N"]),
        alt.Chart(means).mark_line(point=True, color="#6b6b6b").encode(
            x="when:T", y=alt.Y("gmean:Q"), tooltip=["period:N", alt.Tooltip("gmean:Q", format=".4g")])]
    ts = group.get("theil_sen")
    if ts:
        xs = np.linspace(0, periods[-1].ordinal - periods[0].ordinal, 30)
        xm = float(np.median([p.ordinal - periods[0].ordinal for p in periods]))
        ym = ts["intercept"] + ts["slope"] * xm
        lines = np.exp([ts["intercept"] + ts["slope"] * xs, ym + ts["low"] * (xs - xm), ym + ts["high"] * (xs - xm)])
        fit = pd.DataFrame({"when": [_when(periods[0], x) for x in xs], "fit": lines[0],
                            "low": lines[1:].min(axis=0), "high": lines[1:].max(axis=0)})
        layers += [alt.Chart(fit).mark_area(opacity=0.18, color="#1f6fb2", clip=True).encode(
                       x="when:T", y="low:Q", y2="high:Q"),
                   alt.Chart(fit).mark_line(strokeDash=[6, 3], color="#1f6fb2", clip=True).encode(
                       x="when:T", y="fit:Q")]
    times = runs["started_at"]
    cps = [{"when": times.iloc[c["index"] - 1] + (times.iloc[c["index"]] - times.iloc[c["index"] - 1]) / 2,
            "confirmed": c["confirmed"], "label": f"x{_step(c):.3g} (q {c['q_value']:.2g})"}
           for c in group["change_points"] if 0 < c["index"] < len(runs)]
    if cps:
        rules = alt.Chart(pd.DataFrame(cps))
        layers += [rules.mark_rule(color="#c0392b").encode(
            x="when:T", strokeDash=alt.condition("datum.confirmed", alt.value([1, 0]), alt.value([4, 3])),
            tooltip=["when:T", "label:N", "confirmed:N"]),
            rules.mark_text(align="left", dx=3, dy=-6, color="#c0392b", fontSize=10).encode(
                x="when:T", y=alt.value(8), text="label:N")]
    return alt.layer(*layers).properties(height=320)


def page(url: str) -> None:
    everything = titled_history("Trends", url)
    if everything is None:
        return
    c = st.columns(6)
    task, scenario = pick_task_scenario(everything, c[0], c[1], "trend", history_score(everything))
    metric = c[2].selectbox("Figure", list(FIGURES), format_func=FIGURES.get, key="trend_metric")
    by = c[3].selectbox("Period", list(PERIODS), key="trend_by")
    source = c[4].selectbox("Runs", list(SOURCES), format_func=SOURCES.get, key="trend_source")
    confidence = c[5].selectbox("Confidence", [0.9, 0.95, 0.99], index=1, format_func="{:.0%}".format,
                                key="trend_confidence")
    frame = history(url, metric or None, task, scenario, source or None)
    if frame.empty:
        st.error(f"No complete {SOURCES[source]} runs of {task} {scenario} with a {FIGURES[metric]} figure. "
                 f"What exists (runs with their headline figure):")
        st.dataframe(everything.groupby(["task", "scenario", "metric", "provenance"]).size().rename("runs")
                     .reset_index(), hide_index=True)
        return
    try:
        groups = _trend(url, metric, task, scenario, source, by, confidence)
    except InfersightError as exc:
        st.error(str(exc))
        return
    _show(frame, groups)


@st.cache_data(ttl=30, show_spinner="analysing the history")
def _trend(url: str, metric: str, task: str, scenario: str, source: str, by: str, confidence: float) -> list[dict]:
    return trend(history(url, metric or None, task, scenario, source or None), by, confidence=confidence)


def _show(frame: pd.DataFrame, groups: list[dict[str, Any]]) -> None:
    st.caption(f"{len(frame)} runs in {len(groups)} group(s) (system / backend / variant / figure), by "
               f"{groups[0]['by']}; {frame.attrs.get('excluded', 0)} matching runs without this figure left out")
    st.dataframe(summary_table(groups), hide_index=True, width="stretch")
    labels = {i: label(g) for i, g in enumerate(groups)}
    best = max(labels, key=lambda i: (len(groups[i]["periods"]), groups[i]["runs"]))
    chosen = st.selectbox("Group", list(labels), index=best, format_func=labels.get, key="trend_group")
    group = groups[chosen]
    ts, mk = group.get("theil_sen"), group.get("mann_kendall")
    cols = st.columns([0.8, 1, 1.7, 1.5])
    cols[0].metric("Runs / periods", f"{group['runs']} / {len(group['periods'])}")
    if ts:
        cols[1].metric(f"Theil-Sen / {group['by']}", f"{ts['change_per_period']:+.2%}",
                       help=f"relative change per {group['by']}: the median of the pairwise slopes of the log "
                            "period geometric means (Theil 1950, Sen 1968)")
        cols[2].metric(f"{ts['confidence']:.0%} CI of the change", f"[{ts['change_low']:+.1%}, {ts['change_high']:+.1%}]",
                       help="Sen's interval of the slope")
        cols[3].metric("Mann-Kendall", f"{mk['trend']} (p {mk['p_value']:.3g})",
                       help=f"S = {mk['s']}, Z = {mk['z']:.3g}, tau = {mk['tau']:.3g} over {mk['n']} periods")
    for note in group["notes"]:
        st.info(note)
    runs = group_runs(frame, group)
    st.altair_chart(trend_chart(runs, group), width="stretch")
    confirmed = [c for c in group["change_points"] if c["confirmed"]]
    if confirmed:
        st.markdown("Change points (confirmed: a permutation test of the adjacent segments, Benjamini-Hochberg "
                    "q below alpha): " + "; ".join(f"after run {runs['run_id'].iloc[c['index'] - 1]} "
                                                   f"(level x{_step(c):.3g}, q {c['q_value']:.2g})" for c in confirmed))
    if group["outlier_runs"]:
        st.markdown(f"Outlier runs (generalised ESD, flagged, not dropped): {', '.join(map(str, group['outlier_runs']))}")
    st.subheader(f"{group['by'].capitalize()} over {group['by']}")
    st.dataframe(period_rows(group), hide_index=True, width="stretch")
    if group.get("ols"):
        with st.expander("OLS on the log figure (Newey-West errors under serial correlation)"):
            st.json(group["ols"])
