"""The Recommend page: the constraint form (webapp._question) -> engine.services.recommend -> the ranked
answer with ties and probabilities, the Pareto chart, the explanation, the capacity plan and exclusions; CSV download."""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import streamlit as st

from engine.candidates import available, load
from engine.services import RecommendRequest, RecommendResult, recommend
from infersight.webapp._data import store
from infersight.webapp._question import ask
from infersight.webapp._tables import example_banner, show
from reports.charts import pareto_chart
from runner.errors import InfersightError

__all__ = ["page", "pareto_chart", "generative", "answer_labels"]

SHOWN = ["rank", "tied", "candidate", "provenance", "quick", "p_all", "objective", "objective_lo", "objective_hi",
         "samples_per_s", "tokens_per_s", "p99_ms", "ttft_ms", "tpot_ms", "accuracy_ratio", "cost_per_million_usd",
         "cost_per_million_tokens_usd", "units", "capacity_basis", "run_ids"]


@st.cache_data(ttl=30, show_spinner=False)
def _available(url: str) -> pd.DataFrame:
    return available(store(url))


@st.cache_data(ttl=30, show_spinner="reading candidates")
def _candidates(url: str, task: str, scenario: str) -> pd.DataFrame:
    return load(store(url), task, scenario)


@st.cache_data(ttl=30, show_spinner="ranking")
def _recommend(url: str, request: RecommendRequest) -> RecommendResult:
    return recommend(request, store(url))


def generative(url: str) -> Callable[[str, str], bool]:
    """Whether the candidates of a task and scenario generate tokens (cost is then per million tokens)."""
    def check(task: str, scenario: str) -> bool:
        try:
            tokens = _candidates(url, task, scenario)["tokens_per_s"]
        except InfersightError:
            return scenario == "interactive"
        return bool(tokens.notna().any())
    return check


def page(url: str) -> None:
    st.title("Recommend")
    held = _available(url)
    if held.empty:
        st.info(f"No complete runs in {url}: measure or import some first.")
        return
    fields = ask(held, "rec", generative(url))
    try:
        result = _recommend(url, RecommendRequest.parse(**fields))
    except InfersightError as exc:
        st.error(str(exc))
        return
    example_banner(result.catalog.is_example, result.catalog.source)
    _answer(result.recommendation, result.request.task, result.request.scenario)


def answer_labels(rec) -> dict[str, str]:
    """Column labels that depend on the question: the objective's name and unit, throughput as capacity."""
    m = rec.objective.metric
    name = "score (1 = best)" if rec.objective.is_mix else f"{m.label} ({m.unit})" if m.unit else m.label
    server = not rec.ranked.empty and str(rec.ranked["scenario"].iloc[0]) in ("server", "interactive")
    return {"objective": f"Objective: {name}", "objective_lo": "objective CI low", "objective_hi": "objective CI high",
            **({"samples_per_s": "Capacity (queries/s)"} if server else {})}


def _answer(rec, task: str, scenario: str) -> None:
    winner = rec.winner
    if winner is None:
        st.error("No candidate meets all constraints.")
    else:
        tie = f" (tied with {len(rec.explanation.tied_with)} more)" if rec.explanation.tied_with else ""
        st.markdown(f"**Top recommendation{tie}:** {_plain(winner['candidate'])}")
        st.caption(f"rank 1; {winner['provenance']}; runs {winner['run_ids']}")
    for line in rec.explanation.lines:
        st.markdown(f"- {line}")
    if not rec.ranked.empty:
        st.subheader(f"Ranked ({len(rec.ranked)}; tied candidates share a rank)")
        show(rec.ranked, SHOWN, answer_labels(rec))
        st.download_button("Ranked table (CSV)", rec.ranked.to_csv(index=False),
                           f"recommend-{task}-{scenario}.csv", "text/csv")
        st.subheader(f"Pareto frontier: {rec.pareto_axes[0]} against {rec.pareto_axes[1]}")
        st.altair_chart(pareto_chart(rec.ranked, rec.frontier, *rec.pareto_axes), width="stretch")
    if rec.capacity:
        st.subheader("Capacity plan")
        st.markdown(capacity_text(rec.capacity))
    if rec.what_if is not None and not rec.what_if.empty:
        with st.expander("What if a bound or price moves"):
            show(rec.what_if, list(rec.what_if.columns))
    if not rec.excluded.empty:
        with st.expander(f"Excluded ({len(rec.excluded)}) and why"):
            show(rec.excluded, ["candidate", "failed", "shortfall", "shortfall_rel", "run_ids"])
    for note in rec.assumptions:
        st.caption(note)


def _plain(text: str) -> str:
    """Text shown as itself in markdown (underscores, brackets and stars escaped)."""
    return re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", str(text))


def capacity_text(plan: dict) -> str:
    """The capacity plan as one readable paragraph: units of what at how much each, cost, power, basis."""
    def n(value, unit: str = "") -> str:
        return "unknown" if value is None else f"{value:,.{0 if abs(value) >= 100 else 2}f}{unit}"
    tokens = plan.get("cost_per_million_tokens_usd")
    per_million = f"{n(tokens)} USD per million tokens" if tokens is not None else \
        f"{n(plan.get('cost_per_million_usd'))} USD per million inferences"
    text = (f"**{n(plan['units'])} units** of {_plain(plan['candidate'])} for {n(plan['target_load_per_s'])} inferences/s "
            f"({plan['headroom']:.0%} headroom{', N+1' if plan['n_plus_one'] else ''}), each serving "
            f"**{n(plan['unit_samples_per_s'])} inferences/s**: {n(plan.get('cost_per_hour_usd'))} USD/h, "
            f"{per_million}, {n(plan.get('power_w'))} W.")
    if plan.get("capacity_basis"):
        text += f"  \nCapacity per unit from: {_plain(plan['capacity_basis'])}"
    return text
