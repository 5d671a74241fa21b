"""Store access for the app: one Store per URL for the session, and cached tables of runs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from runner.store import Store

__all__ = ["store", "runs_table", "RUN_COLUMNS"]

RUN_COLUMNS = ["id", "task_name", "model_variant", "backend_name", "scenario", "system", "validity",
               "headline_metric", "headline_value", "headline_units", "accuracy_value", "provenance",
               "status", "started_at"]


@st.cache_resource(show_spinner=False)
def store(url: str) -> Store:
    """The store at `url`, opened once per app process."""
    return Store(url)


@st.cache_data(ttl=30, show_spinner="reading runs")
def runs_table(url: str, limit: int | None = None) -> pd.DataFrame:
    """Every run (newest first) with its system name: measured runs from the system card, imported
    ones from their MLPerf provenance."""
    s = store(url)
    rows = s.list_runs(limit=limit)
    imported = {r["id"]: r.get("imported") or {} for r in s.list_runs(limit=limit, source="mlperf")}
    names: dict[str, str] = {}
    for row in rows:
        if row["id"] in imported:
            row["system"] = imported[row["id"]].get("system_name", "")
        else:
            digest = row["system_hash"]
            if digest not in names:
                names[digest] = _system_name(s, digest)
            row["system"] = names[digest]
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS) if rows else pd.DataFrame(columns=RUN_COLUMNS)
    return frame


def _system_name(s: Store, digest: str) -> str:
    card: dict[str, Any] = s.get_card("system", digest)
    return str(card.get("system_name") or digest[:12])
