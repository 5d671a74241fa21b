"""The Trends page: the history of a task's figures by period through the function behind `infersight
trend` (analysis.services.trend): per system / backend / variant, the Theil-Sen slope with its CI and the
Mann-Kendall verdict, period-over-period changes with CIs, change points and outlier runs, drawn by the
reports' series chart (reports._trend_parts.series_chart: runs, period geometric means and the fitted
trend with its CI band)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from analysis import services
from analysis.services import TrendRequest, TrendResult, TrendSeries
from analysis.trend import PERIODS
from infersight.webapp._data import history, history_score, pick_task_scenario, store, titled_history
from reports._trend_parts import series_chart
from runner.errors import InfersightError

__all__ = ["page", "summary_table", "period_rows", "FIGURES", "SOURCES"]

FIGURES = {"": "headline figure", "samples_per_second": "throughput (samples/s)",
           "latency_p50_ms": "p50 latency (ms)", "latency_p90_ms": "p90 latency (ms)",
           "latency_p99_ms": "p99 latency (ms)", "latency_mean_ms": "mean latency (ms)"}
SOURCES = {"": "measured and imported", "measured": "measured here", "mlperf": "imported from MLPerf"}


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def summary_table(groups: tuple[TrendSeries, ...]) -> pd.DataFrame:
    """One row per series, as `infersight trend` prints: slope per period (%) with its CI, the Mann-Kendall
    verdict, the last period-over-period change (%) with its CI, confirmed change points, outlier runs."""
    rows = []
    for g in groups:
        ts, mk = g.theil_sen or {}, g.mann_kendall or {}
        last = g.period_changes[-1] if g.period_changes else {}
        rows.append({"group": g.label(), "periods": len(g.periods), "runs": g.runs,
                     "change_per_period_%": _pct(ts.get("change_per_period")), "ci_low_%": _pct(ts.get("change_low")),
                     "ci_high_%": _pct(ts.get("change_high")), "mann_kendall": mk.get("trend", "-"),
                     "mk_p": mk.get("p_value"), "last_change_%": _pct(last["ratio"] - 1) if last else None,
                     "last_low_%": _pct(last["low"] - 1) if last.get("low") is not None else None,
                     "last_high_%": _pct(last["high"] - 1) if last.get("high") is not None else None,
                     "change_points": sum(c["confirmed"] for c in g.change_points),
                     "outlier_runs": ", ".join(map(str, g.outlier_runs))})
    return pd.DataFrame(rows)


def period_rows(group: TrendSeries) -> pd.DataFrame:
    """The period table of one series: runs, geometric mean and median per period, and the change from
    the period before (ratio with its Welch CI on logs when both periods have 2+ runs)."""
    changes = {c["to"]: c for c in group.period_changes}
    rows = []
    for p in group.periods:
        c = changes.get(p["period"], {})
        rows.append({**p, "change_from": c.get("from"), "ratio": c.get("ratio"), "ci_low": c.get("low"),
                     "ci_high": c.get("high"), "note": c.get("note", "")})
    return pd.DataFrame(rows)


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
        result = _trend(url, TrendRequest.parse(by=by, task=task, scenario=scenario, source=source or None,
                                                metric=metric or None, confidence=confidence))
    except InfersightError as exc:
        st.error(str(exc))
        return
    _show(result)


@st.cache_data(ttl=30, show_spinner="analysing the history")
def _trend(url: str, request: TrendRequest) -> TrendResult:
    return services.trend(request, store(url))


def _show(result: TrendResult) -> None:
    groups = result.groups
    st.caption(f"{result.runs} runs in {len(groups)} group(s) (system / backend / variant / figure), by "
               f"{result.by}; {result.excluded_runs} matching runs without this figure left out")
    st.dataframe(summary_table(groups), hide_index=True, width="stretch")
    labels = {i: g.label() for i, g in enumerate(groups)}
    best = max(labels, key=lambda i: (len(groups[i].periods), groups[i].runs))
    chosen = st.selectbox("Group", list(labels), index=best, format_func=labels.get, key="trend_group")
    group = groups[chosen]
    _figures(group)
    for note in group.notes:
        st.info(note)
    st.altair_chart(series_chart(group), width="stretch")
    confirmed = [c for c in group.change_points if c["confirmed"]]
    if confirmed:
        st.markdown("Change points (confirmed: a permutation test of the adjacent segments, Benjamini-Hochberg "
                    "q below alpha): " + "; ".join(f"after run {c['after_run']} (level "
                                                   f"x{math.exp(c['after_mean'] - c['before_mean']):.3g}, "
                                                   f"q {c['q_value']:.2g})" for c in confirmed))
    if group.outlier_runs:
        st.markdown("Outlier runs (generalised ESD, flagged, not dropped): "
                    + ", ".join(map(str, group.outlier_runs)))
    st.subheader(f"{group.by.capitalize()} over {group.by}")
    st.dataframe(period_rows(group), hide_index=True, width="stretch")
    if group.ols:
        with st.expander("OLS on the log figure (Newey-West errors under serial correlation)"):
            st.json(group.ols)


def _figures(group: TrendSeries) -> None:
    """Runs and periods, the Theil-Sen change per period with its interval, and the Mann-Kendall test."""
    ts, mk = group.theil_sen, group.mann_kendall
    cols = st.columns([0.8, 1, 1.7, 1.5])
    cols[0].metric("Runs / periods", f"{group.runs} / {len(group.periods)}")
    if ts:
        cols[1].metric(f"Theil-Sen / {group.by}", f"{ts['change_per_period']:+.2%}",
                       help=f"relative change per {group.by}: the median of the pairwise slopes of the log "
                            "period geometric means (Theil 1950, Sen 1968)")
        cols[2].metric(f"{ts['confidence']:.0%} CI of the change", f"[{ts['change_low']:+.1%}, {ts['change_high']:+.1%}]",
                       help="Sen's interval of the slope")
        cols[3].metric("Mann-Kendall", f"{mk['trend']} (p {mk['p_value']:.3g})",
                       help=f"S = {mk['s']}, Z = {mk['z']:.3g}, tau = {mk['tau']:.3g} over {mk['n']} periods")
