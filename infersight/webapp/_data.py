"""Store access for the app: one Store per URL for the session, cached tables of runs, and the history
pages' opening (runs with a figure, then a task and one of its scenarios)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from analysis import load
from analysis.settings import distinguishing
from runner.store import Store

__all__ = ["store", "runs_table", "history", "titled_history", "pick_task_scenario", "latencies_ms", "RUN_COLUMNS",
           "configurations_score", "history_score"]

RUN_COLUMNS = ["id", "task_name", "model_variant", "backend_name", "scenario", "system", "settings", "quick",
               "validity", "headline_metric", "headline_value", "headline_units", "accuracy_value", "provenance",
               "status", "started_at", "latency_p99_ms", "samples_per_second"]


@st.cache_resource(show_spinner=False)
def store(url: str) -> Store:
    """The store at `url`, opened once per app process."""
    return Store(url)


@st.cache_data(ttl=30, show_spinner="reading runs")
def runs_table(url: str, limit: int | None = None) -> pd.DataFrame:
    """Every run (newest first) with its system name (measured runs from the system card, imported
    ones from their MLPerf provenance), the settings that tell it apart (analysis.settings), its quick
    flag, and its summary's p99 latency and throughput."""
    s = store(url)
    runs = s.list_runs(limit=limit, provenance=True)
    names: dict[str, str] = {}
    rows = []
    for run in runs:
        row, summary = run.to_dict(), run.summary or {}
        row["latency_p99_ms"], row["samples_per_second"] = summary.get("latency_p99_ms"), summary.get("samples_per_second")
        if row["samples_per_second"] is None and run.headline_units in ("Samples/s", "Queries/s"):
            row["samples_per_second"] = run.headline_value  # an imported MLPerf result's headline rate
        if run.imported is not None:
            row["system"] = run.imported.get("system_name") or ""
        else:
            digest = run.system_hash
            if digest not in names:
                names[digest] = _system_name(s, digest)
            row["system"] = names[digest]
        rows.append(row)
    for row, text in zip(rows, distinguishing(runs)):
        row["settings"] = text
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS) if rows else pd.DataFrame(columns=RUN_COLUMNS)
    return frame


@st.cache_data(ttl=30, show_spinner="reading the history")
def history(url: str, metric: str | None = None, task: str | None = None, scenario: str | None = None,
            source: str | None = None) -> pd.DataFrame:
    """Complete runs with a figure, oldest first (analysis.load.runs_frame: configuration key, system
    label, metric and value); `metric` None: each run's headline figure."""
    return load.runs_frame(store(url), task=task, scenario=scenario, source=source, metric=metric)


def titled_history(title: str, url: str) -> pd.DataFrame | None:
    """Write the page's title; then history(url), or None after saying so on the page when the store has
    no complete run with a figure."""
    st.title(title)
    frame = history(url)
    if frame.empty:
        st.info(f"No complete runs with a figure in {url}: measure or import some first.")
        return None
    return frame


def pick_task_scenario(frame: pd.DataFrame, task_column: Any, scenario_column: Any, key: str,
                       score: pd.Series | None = None) -> tuple[str, str]:
    """A task select box, then one of the scenarios `frame` holds for that task, in the given page columns
    (widget keys `<key>_task` and `<key>_scenario`). `score`, indexed by (task, scenario), picks the first
    view: the pair with the highest score (one that shows an answer), else the first of each list."""
    tasks = sorted(frame["task"].unique())
    best = score.idxmax() if score is not None and len(score) else (None, None)
    task = task_column.selectbox("Task", tasks, index=tasks.index(best[0]) if best[0] in tasks else 0,
                                 key=f"{key}_task")
    scenarios = sorted(frame.loc[frame["task"] == task, "scenario"].unique())
    default = best[1] if task == best[0] and best[1] in scenarios else None
    if default is None and score is not None and task in score.index.get_level_values(0):
        default = score.loc[task].idxmax()
    scenario = scenario_column.selectbox("Scenario", scenarios, key=f"{key}_scenario",
                                         index=scenarios.index(default) if default in scenarios else 0)
    return task, scenario


def configurations_score(frame: pd.DataFrame) -> pd.Series:
    """Per (task, scenario): what a comparison can answer from (Compare's first view): runs measured here
    (per-query records), then configurations with 2+ runs, then configurations."""
    runs = frame.groupby(["task", "scenario", "config_key"]).size()
    measured = (frame["provenance"] == "measured").groupby([frame["task"], frame["scenario"]]).sum()
    replicated = (runs >= 2).groupby(level=[0, 1]).sum()
    measured = measured.where(measured >= 2, 0)  # one measured run has nothing to be compared with
    return (measured * 1e6 + replicated * 1000 + runs.groupby(level=[0, 1]).size()).astype(float)


def history_score(frame: pd.DataFrame) -> pd.Series:
    """Per (task, scenario): the most quarters one series spans, then its runs (Trends' first view)."""
    quarters = frame["started_at"].dt.tz_convert(None).dt.to_period("Q")
    series = frame.assign(quarter=quarters).groupby(["task", "scenario", "system", "backend", "model_variant"])
    spans = series["quarter"].nunique() * 1000 + series.size()
    return spans.groupby(level=[0, 1]).max().astype(float)


@st.cache_data(ttl=300, show_spinner="reading the performance log")
def latencies_ms(url: str, run_id: int) -> np.ndarray | None:
    """Latency of every sample of a measured run in ms (completion minus scheduled time, as the run
    summary's percentiles); None for a run without per-query records (imported from MLPerf)."""
    rec = load.run_records(store(url), store(url).get_run(int(run_id)))
    return None if rec is None else (rec["completed_ns"] - rec["scheduled_ns"]) / 1e6


def _system_name(s: Store, digest: str) -> str:
    card: dict[str, Any] = s.get_card("system", digest)
    return str(card.get("system_name") or digest[:12])
