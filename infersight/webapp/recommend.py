"""The Recommend page: a constraint form -> engine.recommend -> the ranked answer with ties and
probabilities, the Pareto chart, the explanation, the capacity plan and exclusions; CSV download."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from engine import EXAMPLE_CATALOG, Constraints, load_catalog, recommend
from engine.candidates import available, load
from infersight.webapp._data import store
from reports.charts import pareto_chart
from runner.errors import InfersightError

__all__ = ["page", "pareto_chart", "OBJECTIVES"]

OBJECTIVES = {"cost": "least cost per million inferences", "throughput_per_usd": "most throughput per dollar",
              "throughput_per_watt": "most throughput per watt", "latency": "lowest p99 latency",
              "throughput": "most throughput"}
SHOWN = ["rank", "tied", "candidate", "provenance", "p_all", "objective", "objective_lo", "objective_hi",
         "samples_per_s", "p99_ms", "accuracy_ratio", "cost_per_million_usd", "units", "run_ids"]


@st.cache_data(ttl=30, show_spinner=False)
def _available(url: str) -> pd.DataFrame:
    return available(store(url))


@st.cache_data(ttl=30, show_spinner="reading candidates")
def _candidates(url: str, task: str, scenario: str) -> pd.DataFrame:
    return load(store(url), task, scenario)


def page(url: str) -> None:
    st.title("Recommend")
    held = _available(url)
    if held.empty:
        st.info(f"No complete runs in {url}: measure or import some first.")
        return
    tasks = sorted(held["task"].unique())
    with st.form("recommend"):
        c = st.columns(4)
        task = c[0].selectbox("Task", tasks, index=tasks.index("resnet50") if "resnet50" in tasks else 0, key="rec_task")
        scenarios = sorted(held.loc[held["task"] == task, "scenario"].unique())
        scenario = c[1].selectbox("Scenario", scenarios, index=scenarios.index("server") if "server" in scenarios else 0,
                                  key="rec_scenario")
        objective = c[2].selectbox("Objective", list(OBJECTIVES), format_func=OBJECTIVES.get, key="rec_objective")
        target = c[3].number_input("Target load (inferences/s, 0: none)", min_value=0.0, value=0.0, key="rec_target")
        c = st.columns(4)
        p99 = c[0].number_input("max p99 latency (ms, 0: none)", min_value=0.0, value=15.0, key="rec_p99")
        thr = c[1].number_input("min throughput (samples/s, 0: none)", min_value=0.0, value=0.0, key="rec_thr")
        acc = c[2].number_input("min accuracy / reference (0: none)", min_value=0.0, max_value=1.0, value=0.99,
                                key="rec_acc")
        catalog_path = c[3].text_input("Price catalogue (YAML/CSV)", str(EXAMPLE_CATALOG), key="rec_catalog")
        uncertain = st.checkbox("Rank candidates whose verdict is uncertain too", key="rec_uncertain")
        st.form_submit_button("Recommend")
    try:
        frame = _candidates(url, task, scenario)
        constraints = Constraints.build(max_p99_ms=p99 or None, min_throughput_per_s=thr or None,
                                        min_accuracy_ratio=acc or None)
        catalog = load_catalog(Path(catalog_path)) if catalog_path.strip() else None
        rec = recommend(frame, constraints, objective, catalog, target_load=target or None,
                        include_uncertain=uncertain, what_if=True)
    except InfersightError as exc:
        st.error(str(exc))
        return
    _answer(rec, task, scenario)


def _answer(rec, task: str, scenario: str) -> None:
    winner = rec.winner
    if winner is None:
        st.error("No candidate meets all constraints.")
    else:
        tie = f" (tied with {len(rec.explanation.tied_with)} more)" if rec.explanation.tied_with else ""
        st.metric("Top recommendation", winner["candidate"], help=f"rank 1{tie}; provenance {winner['provenance']}")
    for line in rec.explanation.lines:
        st.markdown(f"- {line}")
    if not rec.ranked.empty:
        st.subheader(f"Ranked ({len(rec.ranked)}; tied candidates share a rank)")
        st.dataframe(rec.ranked[[c for c in SHOWN if c in rec.ranked]], hide_index=True, width="stretch")
        st.download_button("Ranked table (CSV)", rec.ranked.to_csv(index=False),
                           f"recommend-{task}-{scenario}.csv", "text/csv")
        st.subheader(f"Pareto frontier: {rec.pareto_axes[0]} against {rec.pareto_axes[1]}")
        st.altair_chart(pareto_chart(rec.ranked, rec.frontier, *rec.pareto_axes), width="stretch")
    if rec.capacity:
        st.subheader("Capacity plan")
        st.dataframe(pd.DataFrame([rec.capacity]), hide_index=True)
    if rec.what_if is not None and not rec.what_if.empty:
        with st.expander("What if a bound or price moves"):
            st.dataframe(rec.what_if, hide_index=True, width="stretch")
    if not rec.excluded.empty:
        with st.expander(f"Excluded ({len(rec.excluded)}) and why"):
            st.dataframe(rec.excluded[["candidate", "failed", "shortfall", "shortfall_rel"]], hide_index=True,
                         width="stretch")
    for note in rec.assumptions:
        st.caption(note)
