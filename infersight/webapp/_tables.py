"""How the app shows tables: human column names with units, numbers with thousands separators, and the
example-price banner. `show(frame, columns)` draws a table with only the named columns, labelled and
formatted from COLUMNS (raw names never reach the page)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

__all__ = ["COLUMNS", "show", "example_banner", "column_config"]

# column -> (label with unit, number format); format None: by type and magnitude (_number_format)
COLUMNS: dict[str, tuple[str, str | None]] = {
    "rank": ("Rank", "%d"), "tied": ("Tied", None), "candidate": ("Configuration", None),
    "provenance": ("Source", None), "source": ("Source", None), "p_all": ("P(meets every bound)", "%.2f"),
    "samples_per_s": ("Throughput (inferences/s)", None), "tokens_per_s": ("Tokens/s", None),
    "p50_ms": ("p50 latency (ms)", None), "p90_ms": ("p90 latency (ms)", None),
    "p99_ms": ("p99 latency (ms)", None), "ttft_ms": ("p99 TTFT (ms)", None),
    "tpot_ms": ("p99 TPOT (ms)", None), "accuracy": ("Accuracy (metric's unit)", "%.4g"),
    "accuracy_ratio": ("Accuracy / reference", "%.4f"),
    "cost_per_million_usd": ("Cost per million inferences (USD)", "%.4g"),
    "cost_per_million_tokens_usd": ("Cost per million tokens (USD)", "%.4g"),
    "cost_per_hour_usd": ("Cost per hour (USD/h)", "%.4g"), "units": ("Units", "%d"),
    "power_total_w": ("Power (W)", None), "run_ids": ("Runs", None), "quick": ("Quick run", None),
    "capacity_basis": ("Capacity from", None), "failed": ("Fails worst", None),
    "shortfall": ("Short by (bound's unit)", "%.4g"), "shortfall_rel": ("Short by (fraction of bound)", "%.3f"),
    "settings": ("Settings", None), "system": ("System", None), "backend": ("Backend", None),
    "model_variant": ("Variant", None), "n_runs": ("Runs", "%d"), "id": ("Run", "%d"),
    "headline_value": ("Value", None), "accuracy_value": ("Accuracy", "%.4g"),
    "latency_p99_ms": ("p99 latency (ms)", None), "samples_per_second": ("Throughput (samples/s)", None),
    "parameter": ("Moved", None), "change": ("By", None), "value": ("To", "%.4g"), "winner": ("Winner then", None),
    "winner_changed": ("Winner changes", None), "ranked": ("Ranked then", "%d"),
}


def column_config(frame: pd.DataFrame, columns: Sequence[str], labels: dict[str, str] | None = None) -> dict:
    """st.dataframe column_config for `columns` of `frame`: COLUMNS' labels (or `labels`' overrides) and
    number formats; dates, booleans and text by their type."""
    config: dict[str, object] = {}
    for name in columns:
        label, fmt = COLUMNS.get(name, (name.replace("_", " "), None))
        label = (labels or {}).get(name, label)
        kind = frame[name].dtype.kind
        if kind == "M":
            config[name] = st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm")
        elif kind == "b":
            config[name] = st.column_config.CheckboxColumn(label)
        elif kind in "iuf":
            config[name] = st.column_config.NumberColumn(label, format=fmt or _number_format(frame[name]))
        else:
            config[name] = st.column_config.TextColumn(label, width="large" if name == "candidate" else None)
    return config


def _number_format(values: pd.Series) -> str:
    """Thousands separators for figures from 100 up (44,882.9), four significant digits below (0.001886)."""
    finite = values.abs()[values.notna()]
    return "localized" if len(finite) and finite.max() >= 100 else "%.4g"


def show(frame: pd.DataFrame, columns: Sequence[str], labels: dict[str, str] | None = None, **kwargs) -> None:
    """The table of `columns` (those `frame` has), labelled and formatted (column_config), fitting the page."""
    present = [c for c in columns if c in frame]
    st.dataframe(frame[present], hide_index=True, width="stretch",
                 column_config=column_config(frame, present, labels), **kwargs)


def example_banner(is_example: bool, source: str) -> None:
    """A warning banner when the prices used are the shipped EXAMPLE catalogue's."""
    if is_example:
        st.warning(f"EXAMPLE prices: every price and power figure comes from {source}, an example catalogue, "
                   f"not a quote. Give your own catalogue for a real decision.", icon=":material/warning:")
