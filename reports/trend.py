"""The quarterly trend report: what changed in a quarter, against the history before it, per task
and scenario, as one self-contained HTML file (`infersight report trend --quarter 2026Q3`).

Over the complete runs with a headline figure up to the end of the chosen quarter (runs after it are
left out, so a report for a past quarter reads as it would have then), grouped as `infersight
trend` groups them (task, model variant, scenario, system, backend, metric: `analysis.trend.trend`):
- per task and scenario, the quarterly geometric mean of each series with its interval (a band),
  its confirmed change points (`analysis.changepoints`, on the run series) marked on the time axis;
- each series' change from the previous quarter with runs into the chosen one, with the Welch
  interval on logs (`analysis.trend`'s period-over-period changes), its Theil-Sen change per quarter
  with its interval and the Mann-Kendall test, and outlier runs (flagged, never dropped);
- a leaderboard of the systems/backends/variants in the quarter (with last quarter's rank) and the
  leader of each recent quarter;
- the reproducibility of every configuration run 2+ times in the quarter (`analysis.repro`, on run
  figures: every run within 2% of their median);
- a short generated summary of what changed.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from analysis import load
from analysis._checks import lower_is_better
from analysis.trend import period_intervals, periods_of, trend
from reports import _trend_parts as parts
from reports import charts
from reports._page import ChartBlock, render_page, significant
from runner.errors import AnalysisError
from runner.store import Store

__all__ = ["render_trend_report", "trend_report_context", "parse_quarter"]

_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]\s*([1-4])\s*$")
_SUMMARY_CHANGES = 6  # largest significant changes named in the summary


def parse_quarter(text: str) -> pd.Period:
    """'2026Q3' (or '2026-Q3', '2026q3') as a pandas quarterly period; AnalysisError otherwise."""
    found = _QUARTER.match(str(text))
    if not found:
        raise AnalysisError(f"quarter {text!r}: write it as YEARQn, e.g. 2026Q3")
    return pd.Period(year=int(found.group(1)), quarter=int(found.group(2)), freq="Q")


def render_trend_report(store: Store, quarter: str, *, task: str | None = None, scenario: str | None = None,
                        confidence: float = 0.95, top: int = 8, note: str = "") -> str:
    """The trend report of `quarter` ('2026Q3') as HTML; `task`/`scenario` narrow it, `top` caps the
    series drawn per chart (every series stays in the tables). AnalysisError (exit 2 on the CLI) when the
    quarter is malformed or has no runs."""
    context, chart_list = trend_report_context(store, quarter, task=task, scenario=scenario, confidence=confidence,
                                               top=top, note=note)
    return render_page("trend.html.j2", context, chart_list)


def trend_report_context(store: Store, quarter: str, *, task: str | None = None, scenario: str | None = None,
                         confidence: float = 0.95, top: int = 8,
                         note: str = "") -> tuple[dict[str, Any], list[ChartBlock]]:
    """Everything the trend template shows, and its charts (one per task and scenario)."""
    period = parse_quarter(quarter)
    history, excluded = _history(store, period, task, scenario)
    results = trend(history, "quarter", confidence=confidence)
    intervals = period_intervals(history, "quarter", confidence=confidence)
    intervals["label"] = [parts.label_of(r) for r in intervals[parts.KEYS].to_dict("records")]
    runs_by_group = {_key(k): g for k, g in history.groupby(parts.KEYS, sort=True, dropna=False)}
    repro = parts.config_repro(history[history["quarter"] == period], confidence=confidence)
    panels, chart_list = [], []
    for (task_name, scenario_name, metric), members in _panels(results).items():
        panel = _panel(members, intervals, runs_by_group, repro, period, top)
        panel.update(task=task_name, scenario=scenario_name, metric=metric, key=f"trend_{len(panels)}")
        if parts.has_figures(panel["chart_rows"]):  # a panel with nothing to draw gets no chart (a 'no data' line)
            chart_list.append(charts.block(panel["key"], parts.trend_chart(
                panel["chart_rows"], panel["chart_cps"], period, metric, panel["log"]), panel["caption"]))
        panels.append(panel)
    panels.sort(key=lambda p: not parts.has_figures(p["chart_rows"]))  # panels with data in the quarter first
    in_quarter = history[history["quarter"] == period]
    context = dict(title=f"Trends to {period}: {task or 'every task'}{' / ' + scenario if scenario else ''}",
                   quarter=str(period), previous=str(period - 1), note=note, panels=panels, confidence=confidence,
                   runs=len(history), runs_in_quarter=len(in_quarter), excluded=excluded,
                   first=str(history["quarter"].min()), configurations=int(in_quarter["config_key"].nunique()),
                   summary=_summary(panels, repro, period, len(in_quarter)), repro_total=len(repro))
    return context, chart_list


def _history(store: Store, period: pd.Period, task: str | None, scenario: str | None) -> tuple[pd.DataFrame, int]:
    """Complete runs with a positive figure up to the end of `period`, with their quarter; and how many
    matching runs were left out for having no (positive) figure."""
    frame = load.runs_frame(store, task=task, scenario=scenario)
    asked = ", ".join(f"{k} {v}" for k, v in (("task", task), ("scenario", scenario)) if v) or "any task"
    if frame.empty:
        raise AnalysisError(f"trend report: no complete runs with a headline figure ({asked})")
    frame["quarter"] = periods_of(frame["started_at"], "quarter")
    positive = frame["value"].astype(float) > 0
    excluded = int(frame.attrs.get("excluded", 0) + (~positive).sum())
    history = frame[positive & (frame["quarter"] <= period)].reset_index(drop=True)
    if not (history["quarter"] == period).any():
        span = f"{frame['quarter'].min()} to {frame['quarter'].max()}"
        raise AnalysisError(f"trend report: no runs in {period} ({asked}); the runs span {span}")
    return history, excluded


def _key(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (values if isinstance(values, tuple) else (values,)))


def _panels(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for result in results:
        group = result["group"]
        out.setdefault((group["task"], group["scenario"], group["metric"]), []).append(result)
    return out


def _panel(members: list[dict[str, Any]], intervals: pd.DataFrame, runs_by_group: dict, repro: list[dict[str, Any]],
           period: pd.Period, top: int) -> dict[str, Any]:
    """One task / scenario / metric: its series' rows (best first), leaderboard, leaders, reproducibility
    and chart data."""
    first = members[0]["group"]
    lower = members[0].get("lower_is_better", lower_is_better(first["metric"]))
    rows, cps_all = [], []
    for result in members:
        key, label = _key(tuple(result["group"][k] for k in parts.KEYS)), parts.label_of(result["group"])
        cps = parts.change_points(result, runs_by_group[key])
        cps_all += [{**c, "series": label} for c in cps]
        rows.append(_series_row(result, label, cps, period, lower))
    keys = {_key(tuple(m["group"][k] for k in parts.KEYS)) for m in members}
    mine = intervals[[_key(tuple(r)) in keys for r in intervals[parts.KEYS].itertuples(index=False)]]
    shown = _shown_series(rows, top)
    chart_rows = mine[mine["label"].isin(shown)]
    values = chart_rows["gmean"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    rows.sort(key=lambda r: (r["value"] is None, (r["value"] or 0) * (1 if lower else -1)))
    labels = {r["label"] for r in rows}
    return dict(rows=rows, direction="lower" if lower else "higher", lower=lower,
                caption=_caption(period, len(shown), len(rows) - len(shown)),
                leaderboard=parts.leaderboard(mine, period, lower), leaders=parts.leaders_by_quarter(mine, lower),
                repro=[r for r in repro if r["label"] in labels and
                       (r["task"], r["scenario"], r["metric"]) == (first["task"], first["scenario"], first["metric"])],
                chart_rows=chart_rows, chart_cps=[c for c in cps_all if c["series"] in shown],
                log=bool(len(values) and values.min() > 0 and values.max() > 10 * values.min()))


def _caption(period: pd.Period, shown: int, hidden: int) -> str:
    return (f"Quarterly geometric mean of each series (line) with its interval (band; none with a single run); "
            f"dashed rules: confirmed change points (the change as a ratio), at the quarter of the first run after "
            f"each; shaded: {period}."
            + (f" The {shown} series with most runs in {period} are drawn; {hidden} more are in the tables."
               if hidden else ""))


def _shown_series(rows: list[dict[str, Any]], top: int) -> list[str]:
    ordered = sorted(rows, key=lambda r: (-r["runs_in_quarter"], -r["runs"], r["label"]))
    return [r["label"] for r in ordered if r["runs_in_quarter"]][:top]


def _series_row(result: dict[str, Any], label: str, cps: list[dict[str, Any]], period: pd.Period,
                lower: bool) -> dict[str, Any]:
    """One series: its figure in the quarter, the change into it with its interval, slope, test, change points."""
    now = next((p for p in result["periods"] if p["period"] == str(period)), None)
    change = next((c for c in result["period_changes"] if c["to"] == str(period)), None)
    ts, mk = result.get("theil_sen"), result.get("mann_kendall")
    row = dict(label=label, group=result["group"], runs=result["runs"], quarters=len(result["periods"]),
               runs_in_quarter=now["runs"] if now else 0, value=now["gmean"] if now else None,
               change=_change(change, lower), slope=None, test=None, outliers=result["outlier_runs"],
               change_points=cps, notes=result["notes"])
    if ts:
        row["slope"] = {"estimate": ts["change_per_period"], "low": ts["change_low"], "high": ts["change_high"]}
    if mk:
        row["test"] = {"trend": mk["trend"], "p": mk["p_value"]}
    return row


def _change(change: dict[str, Any] | None, lower: bool) -> dict[str, Any] | None:
    """A period-over-period change with its verdict: better/worse when its interval excludes 1."""
    if change is None:
        return None
    low, high = change.get("low"), change.get("high")
    significant = low is not None and high is not None and (low > 1 or high < 1)
    verdict = "no CI" if low is None else ("no significant change" if not significant else
                                           ("better" if (change["ratio"] < 1) == lower else "worse"))
    return {**change, "significant": significant, "verdict": verdict}


def _summary(panels: list[dict[str, Any]], repro: list[dict[str, Any]], period: pd.Period, runs: int) -> list[str]:
    """A few sentences: the biggest significant changes, change points in the quarter, new leaders,
    reproducibility."""
    lines = [f"{runs:,} runs in {period} over {sum(len(p['rows']) for p in panels)} series in {len(panels)} "
             f"task/scenario panel(s)."]
    lines += _change_lines(panels, period) + _change_point_lines(panels, period) + _leader_lines(panels, period)
    if repro:
        good = sum(1 for r in repro if r["reproducible"])
        lines.append(f"{good} of {len(repro)} configurations run 2+ times in {period} are reproducible "
                     f"(every run within 2% of their median).")
    return lines


def _change_lines(panels: list[dict[str, Any]], period: pd.Period) -> list[str]:
    """The largest significant changes into the quarter, biggest first."""
    changes = [(p, r) for p in panels for r in p["rows"] if r["change"] and r["change"]["significant"]]
    changes.sort(key=lambda pr: -abs(np.log(pr[1]["change"]["ratio"])))
    lines = [f"{panel['task']} {panel['scenario']}, {row['label']}: {panel['metric']} {c['ratio'] - 1:+.1%} "
             f"[{c['low'] - 1:+.1%}, {c['high'] - 1:+.1%}] from {c['from']} ({c['verdict']})."
             for panel, row in changes[:_SUMMARY_CHANGES] for c in (row["change"],)]
    if len(changes) > _SUMMARY_CHANGES:
        lines.append(f"{len(changes) - _SUMMARY_CHANGES} more series changed significantly (see the tables).")
    if not changes:
        tested = sum(1 for p in panels for r in p["rows"] if r["change"] and r["change"]["low"] is not None)
        lines.append(f"No series changed significantly into {period} ({tested} with an interval to judge by).")
    return lines


def _change_point_lines(panels: list[dict[str, Any]], period: pd.Period) -> list[str]:
    return [f"Change point in {period}: {panel['task']} {panel['scenario']}, {row['label']}: x{cp['ratio']:.3f} "
            f"from run {cp['run_id']} on {cp['date']:%Y-%m-%d}."
            for panel in panels for row in panel["rows"] for cp in row["change_points"] if cp["quarter"] == str(period)]


def _leader_lines(panels: list[dict[str, Any]], period: pd.Period) -> list[str]:
    """New leaders by name; panels whose leader stayed, or that had no runs last quarter, counted."""
    lines, same, new = [], 0, 0
    for panel in panels:
        board = panel["leaderboard"]
        before = next((e for e in panel["leaders"] if e["quarter"] == str(period - 1)), None)
        if not board or before is None:
            new += bool(board)
        elif before["label"] == board[0]["label"]:
            same += 1
        else:
            lines.append(f"{panel['task']} {panel['scenario']}: new leader in {period}, {board[0]['label']} "
                         f"({significant(board[0]['gmean'])} {panel['metric']}), after {before['label']}.")
    if same:
        lines.append(f"The leader is unchanged from {period - 1} in {same} panel(s).")
    if new:
        lines.append(f"{new} panel(s) had no runs in {period - 1}: their leaders are in the leaderboards below.")
    return lines
