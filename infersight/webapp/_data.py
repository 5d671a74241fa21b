"""Store access for the app: one Store per URL for the session, cached tables of runs, and the history
pages' opening (runs with a figure, then a task and one of its scenarios)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from analysis import load
from runner.store import Store

__all__ = ["store", "runs_table", "history", "titled_history", "pick_task_scenario", "latencies_ms", "RUN_COLUMNS"]

RUN_COLUMNS = ["id", "task_name", "model_variant", "backend_name", "scenario", "system", "validity",
               "headline_metric", "headline_value", "headline_units", "accuracy_value", "provenance",
               "status", "started_at", "latency_p99_ms", "samples_per_second"]


@st.cache_resource(show_spinner=False)
def store(url: str) -> Store:
    """The store at `url`, opened once per app process."""
    return Store(url)


@st.cache_data(ttl=30, show_spinner="reading runs")
def runs_table(url: str, limit: int | None = None) -> pd.DataFrame:
    """Every run (newest first) with its system name (measured runs from the system card, imported
    ones from their MLPerf provenance) and its summary's p99 latency and throughput."""
    s = store(url)
    rows = s.list_runs(limit=limit, provenance=True)
    names: dict[str, str] = {}
    for row in rows:
        summary = row.get("summary") or {}
        row["latency_p99_ms"], row["samples_per_second"] = summary.get("latency_p99_ms"), summary.get("samples_per_second")
        if "imported" in row:
            row["system"] = row["imported"].get("system_name") or ""
        else:
            digest = row["system_hash"]
            if digest not in names:
                names[digest] = _system_name(s, digest)
            row["system"] = names[digest]
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


def pick_task_scenario(frame: pd.DataFrame, task_column: Any, scenario_column: Any, key: str) -> tuple[str, str]:
    """A task select box, then one of the scenarios `frame` holds for that task, in the given page columns
    (widget keys `<key>_task` and `<key>_scenario`)."""
    tasks = sorted(frame["task"].unique())
    task = task_column.selectbox("Task", tasks, key=f"{key}_task")
    scenarios = sorted(frame.loc[frame["task"] == task, "scenario"].unique())
    scenario = scenario_column.selectbox("Scenario", scenarios, key=f"{key}_scenario")
    return task, scenario


@st.cache_data(ttl=300, show_spinner="reading the performance log")
def latencies_ms(url: str, run_id: int) -> np.ndarray | None:
    """Latency of every sample of a measured run in ms (completion minus scheduled time, as the run
    summary's percentiles); None for a run without per-query records (imported from MLPerf)."""
    rec = load.run_records(store(url), store(url).get_run(int(run_id)))
    return None if rec is None else (rec["completed_ns"] - rec["scheduled_ns"]) / 1e6


def _system_name(s: Store, digest: str) -> str:
    card: dict[str, Any] = s.get_card("system", digest)
    return str(card.get("system_name") or digest[:12])
