"""The MLPerf round-over-round report: what changed between published rounds, per accelerator and
benchmark, as one self-contained HTML file (`infersight report trend --source mlperf`).

Over the results imported from MLPerf (every round in the store, or those named), grouped by what
makes results comparable (`analysis.trend.MLPERF_GROUP_COLUMNS`: benchmark and accuracy class,
scenario, accelerator model x count per node or the host CPU of CPU-only systems, node count,
division, and the exact headline field, so scheduled and completed rates never share a series):
- per benchmark and scenario, each series' geometric mean per round with its t interval (none with a
  single result), and its change from the previous round it appears in, with the Welch interval on
  logs where both rounds have 2+ results (`analysis.trend`'s period-over-period changes);
- the leader of every round in each division (best geometric mean);
- new entrants: series in the latest round that no earlier round in the store has;
- a short generated summary of the largest changes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis import load
from analysis._checks import lower_is_better
from analysis.trend import MLPERF_GROUP_COLUMNS, period_intervals, round_ordinal, trend
from reports._page import render_page, significant
from runner.errors import AnalysisError
from runner.store import Store

__all__ = ["render_rounds_report", "rounds_report_context"]

_SERIES = ("model_variant", "system", "division")  # a series within a benchmark / scenario / metric panel
_SUMMARY_CHANGES = 6


def render_rounds_report(store: Store, *, task: str | None = None, scenario: str | None = None,
                         rounds: list[str] | None = None, confidence: float = 0.95, note: str = "") -> str:
    """The round-over-round report as HTML; AnalysisError (exit 2 on the CLI) when there is nothing to
    report."""
    return render_page("mlperf_rounds.html.j2", rounds_report_context(
        store, task=task, scenario=scenario, rounds=rounds, confidence=confidence, note=note), [])


def rounds_report_context(store: Store, *, task: str | None = None, scenario: str | None = None,
                          rounds: list[str] | None = None, confidence: float = 0.95, note: str = "") -> dict[str, Any]:
    """Everything the template shows (see the module doc)."""
    frame = _results(store, task, scenario, rounds)
    order = sorted(frame["round"].unique(), key=round_ordinal)
    results = trend(frame, "round", group_by=MLPERF_GROUP_COLUMNS, confidence=confidence)
    intervals = period_intervals(frame, "round", group_by=MLPERF_GROUP_COLUMNS, confidence=confidence)
    panels = []
    for (task_name, scenario_name, metric), members in _by_panel(results).items():
        lower = lower_is_better(metric, members[0]["group"].get("units"))
        mine = intervals[(intervals["task"] == task_name) & (intervals["scenario"] == scenario_name)
                         & (intervals["metric"] == metric)]
        panels.append(dict(task=task_name, scenario=scenario_name, metric=metric, key=f"panel_{len(panels)}",
                           direction="lower" if lower else "higher",
                           rows=_rows(members, mine, order, lower), leaders=_leaders(mine, order, lower),
                           entrants=_entrants(mine, order)))
    return dict(title=f"MLPerf Inference round over round: {', '.join(order)}"
                      f"{' / ' + task if task else ''}{' / ' + scenario if scenario else ''}",
                rounds=order, latest=order[-1], results=len(frame), panels=panels, note=note,
                confidence=confidence,
                per_round={r: int((frame["round"] == r).sum()) for r in order},
                summary=_summary(panels, order))


def _results(store: Store, task: str | None, scenario: str | None, rounds: list[str] | None) -> pd.DataFrame:
    frame = load.runs_frame(store, task=task, scenario=scenario, source="mlperf")
    frame = frame[frame["value"].astype(float) > 0]
    if rounds:
        frame = frame[frame["round"].isin(rounds)]
    if frame.empty:
        asked = ", ".join(f"{k} {v}" for k, v in (("task", task), ("scenario", scenario),
                                                  ("rounds", ",".join(rounds or []))) if v) or "any"
        raise AnalysisError(f"MLPerf round report: no imported MLPerf results with a headline figure ({asked}); "
                            f"import some with `infersight import mlperf PATH`")
    return frame.reset_index(drop=True)


def _by_panel(results: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for result in results:
        group = result["group"]
        out.setdefault((group["task"], group["scenario"], group["metric"]), []).append(result)
    return out


def _label(values: dict[str, Any]) -> str:
    return f"{values['system']} / {values['model_variant']} ({values['division']})"


def _rows(members: list[dict[str, Any]], intervals: pd.DataFrame, order: list[str], lower: bool) -> list[dict]:
    """One row per series: its figure in each round and its latest change with its interval."""
    rows = []
    for result in members:
        group = result["group"]
        mine = intervals[(intervals[list(_SERIES)] == pd.Series({k: group[k] for k in _SERIES})).all(axis=1)]
        cells = {r["round"]: r for r in mine.to_dict("records")}
        change = result["period_changes"][-1] if result["period_changes"] else None
        rows.append(dict(label=_label(group), cells=[cells.get(r) for r in order], change=_verdict(change, lower),
                         latest=cells.get(order[-1], {}).get("gmean")))
    rows.sort(key=lambda r: (r["latest"] is None, (r["latest"] or 0) * (1 if lower else -1)))
    return rows


def _verdict(change: dict[str, Any] | None, lower: bool) -> dict[str, Any] | None:
    if change is None:
        return None
    low, high = change.get("low"), change.get("high")
    sig = low is not None and high is not None and (low > 1 or high < 1)
    verdict = "no CI" if low is None else ("no significant change" if not sig else
                                           ("better" if (change["ratio"] < 1) == lower else "worse"))
    return {**change, "significant": sig, "verdict": verdict}


def _leaders(intervals: pd.DataFrame, order: list[str], lower: bool) -> list[dict[str, Any]]:
    """The best series of each round, per division (MLCommons compares results within a division only)."""
    out = []
    for division in sorted(intervals["division"].unique()):
        for name in order:
            here = intervals[(intervals["round"] == name) & (intervals["division"] == division)]
            if here.empty:
                continue
            best = here.sort_values("gmean", ascending=lower).iloc[0]
            out.append(dict(round=name, division=division, label=_label(best), gmean=float(best["gmean"]),
                            runs=int(best["runs"]), series=len(here)))
    return out


def _entrants(intervals: pd.DataFrame, order: list[str]) -> list[str]:
    """Series of the latest round that no earlier round in the store has (none when it is the only round)."""
    if len(order) < 2:
        return []
    latest = intervals[intervals["round"] == order[-1]]
    earlier = {_label(r) for r in intervals[intervals["round"] != order[-1]].to_dict("records")}
    return sorted(_label(r) for r in latest.to_dict("records") if _label(r) not in earlier)


def _summary(panels: list[dict[str, Any]], order: list[str]) -> list[str]:
    lines = [f"{len(panels)} benchmark/scenario panel(s) over rounds {', '.join(order)}."]
    changes = [(p, r) for p in panels for r in p["rows"] if r["change"]]
    changes.sort(key=lambda pr: -abs(pr[1]["change"]["ratio"] - 1))
    for panel, row in changes[:_SUMMARY_CHANGES]:
        c = row["change"]
        interval = (f" [{c['low'] - 1:+.1%}, {c['high'] - 1:+.1%}]" if c.get("low") is not None
                    else " (no CI: 1 result)")
        lines.append(f"{panel['task']} {panel['scenario']}, {row['label']}: {panel['metric']} "
                     f"{c['ratio'] - 1:+.1%}{interval} from {c['from']} to {c['to']} ({c['verdict']}).")
    if not changes:
        lines.append("No series appears in two rounds: there is no round-over-round change to report.")
    entrants = sum(len(p["entrants"]) for p in panels)
    if entrants:
        lines.append(f"{entrants} series are new in {order[-1]} (listed per panel).")
    for panel in panels:
        for before, lead in zip(panel["leaders"], panel["leaders"][1:]):
            same_division = lead["division"] == before["division"]
            if same_division and lead["round"] == order[-1] and lead["label"] != before["label"]:
                lines.append(f"{panel['task']} {panel['scenario']} ({lead['division']}): new leader in "
                             f"{lead['round']}, {lead['label']} ({significant(lead['gmean'])} {panel['metric']}), "
                             f"after {before['label']}.")
    return lines
