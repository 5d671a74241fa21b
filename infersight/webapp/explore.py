"""The Explore page: filter the stored runs, see throughput against p99 latency for all of them, and
overlay the latency CDFs of chosen measured runs (per-query logs; imported runs have none)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from infersight.webapp._data import runs_table, store
from infersight.webapp._tables import show
from infersight.webapp.runs import LABELS as RUNS_LABELS
from reports import charts

__all__ = ["page", "filter_runs", "figures"]

FILTERS = {"task_name": "task", "scenario": "scenario", "backend_name": "backend", "system": "system",
           "provenance": "provenance"}
MAX_CDFS = 8


def filter_runs(table: pd.DataFrame, chosen: dict[str, list[str]]) -> pd.DataFrame:
    """Rows of `table` whose every filtered column is one of the chosen values (empty choice: any)."""
    keep = np.ones(len(table), dtype=bool)
    for column, values in chosen.items():
        if values:
            keep &= table[column].isin(values).to_numpy()
    return table[keep]


def figures(table: pd.DataFrame) -> pd.DataFrame:
    """p99 latency and throughput of the runs in a runs_table (rows lacking either, or with a zero, are left out)."""
    latency = pd.to_numeric(table["latency_p99_ms"], errors="coerce")
    throughput = pd.to_numeric(table["samples_per_second"], errors="coerce")
    keep = (latency > 0) & (throughput > 0)
    return pd.DataFrame({"run": table["id"][keep].astype(int), "latency_ms": latency[keep].astype(float),
                         "throughput": throughput[keep].astype(float)}).reset_index(drop=True)


def page(url: str) -> None:
    st.title("Explore")
    table = runs_table(url)
    if table.empty:
        st.info(f"No runs in {url} yet.")
        return
    cols = st.columns(len(FILTERS))
    chosen = {column: cols[i].multiselect(label, sorted(table[column].dropna().astype(str).unique()),
                                          key=f"explore_{column}")
              for i, (column, label) in enumerate(FILTERS.items())}
    shown = filter_runs(table, chosen)
    st.caption(f"{len(shown):,} of {len(table):,} runs")
    show(shown, list(shown.columns), RUNS_LABELS)
    points = figures(shown).merge(
        shown.rename(columns={"id": "run"})[["run", "system", "backend_name", "scenario", "task_name"]], on="run")
    if points.empty:
        st.caption("None of these runs records both a p99 latency and a throughput.")
    else:
        st.subheader("Throughput against p99 latency")
        st.caption("One point per run, measured here or imported from MLPerf (their published p99 and rate), "
                   "coloured by scenario.")
        st.altair_chart(charts.throughput_vs_latency(points, color="scenario"), width="stretch", height=420)
    measured = shown[shown["provenance"] == "measured"]
    if measured.empty:
        return
    st.subheader("Latency CDFs")
    labels = {int(r.id): f"{r.id}: {r.task_name} {r.model_variant} / {r.backend_name} / {r.scenario}"
              for r in measured.itertuples()}
    picked = st.multiselect("Runs (measured here; at most 8)", list(labels), default=list(labels)[:3],
                            format_func=labels.get, max_selections=MAX_CDFS, key="explore_cdf_runs")
    series = {}
    for run_id in picked:
        rec = store(url).read_perf_samples(int(run_id))
        series[labels[run_id]] = (rec["completed_ns"] - rec["scheduled_ns"]) / 1e6
    if series:
        st.altair_chart(charts.latency_cdfs(series), width="stretch", height=380)
