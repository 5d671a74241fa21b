"""The Compare page: two runs or two configurations side by side, through the function behind
`infersight compare` (analysis.services.compare, its record drawn as it is): each side's figures with their
CIs, the ratio B/A with its CI, the significance and equivalence verdicts, and the runs' latency CDFs."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from analysis import services
from analysis.services import CompareRequest, ComparisonResult, ComparisonSide, RunFigure, SideComparison
from infersight.webapp._data import (configurations_score, latencies_ms, pick_task_scenario, runs_table, store,
                                     titled_history)
from reports import charts
from runner.errors import InfersightError

__all__ = ["page", "options", "default_pair", "side_figures", "FIGURES", "KINDS"]

KINDS = ("runs", "configurations")
FIGURES = {"": "the baseline's headline figure", "samples_per_second": "throughput (samples/s)",
           "queries_per_second": "throughput (queries/s)", "tokens_per_second": "throughput (tokens/s)",
           "latency_p50_ms": "p50 latency (ms)", "latency_p90_ms": "p90 latency (ms)",
           "latency_p99_ms": "p99 latency (ms)", "latency_mean_ms": "mean latency (ms)"}
MAX_CDFS = 8
CHART_HEIGHT = 380  # px, passed to st.altair_chart: it does not leave room for a bottom legend by itself
MAX_RUNS_SHOWN = 20


def options(frame: pd.DataFrame, kind: str, settings: dict[int, str] | None = None) -> dict[str, str]:
    """The references a CompareRequest takes (a run id, or config:KEY) with a label each, from rows of
    analysis.load.runs_frame: one per run, or one per configuration (newest first). `settings` (run id ->
    the settings that tell it apart, runs_table's column) names them, so look-alike options differ."""
    def named(run_id: int) -> str:
        text = (settings or {}).get(int(run_id), "-")
        return "" if text in ("-", "") else f" [{text}]"

    if kind == "runs":
        return {str(r.run_id): f"run {r.run_id}: {r.model_variant} / {r.backend} / {r.system}{named(r.run_id)} "
                               f"({r.provenance}, {r.started_at:%Y-%m-%d})" for r in frame.iloc[::-1].itertuples()}
    out = {}
    for key, runs in frame.groupby("config_key", sort=False):
        first, ids = runs.iloc[0], runs["run_id"].tolist()
        out[f"config:{key}"] = (f"config {key[:8]}: {first.model_variant} / {first.backend} / {first.system}"
                                f"{named(first.run_id)} ({len(ids)} run{'s' if len(ids) > 1 else ''}: "
                                f"{', '.join(map(str, ids[:6]))}{', ...' if len(ids) > 6 else ''})")
    return dict(reversed(out.items()))


def run_settings(url: str) -> dict[int, str]:
    """Run id -> the settings that tell it apart (the Runs table's column)."""
    table = runs_table(url)
    return dict(zip(table["id"].astype(int), table["settings"].astype(str)))


def _rows(frame: pd.DataFrame, ref: str) -> pd.DataFrame:
    return (frame[frame["config_key"] == ref.removeprefix("config:")] if ref.startswith("config:")
            else frame[frame["run_id"].astype(str) == ref])


def answerable(frame: pd.DataFrame, ref: str) -> bool:
    """Whether an option carries its own replication: a configuration of 2+ runs, or runs measured here (their
    per-query records); one imported MLPerf result is a single figure."""
    found = _rows(frame, ref)
    return len(found) >= 2 or bool(len(found) and (found["provenance"] == "measured").all())


def default_pair(frame: pd.DataFrame, refs: list[str], a: str | None = None) -> tuple[int, int]:
    """Indexes into `refs` of a first pair that `analysis.services.compare` accepts without force and can answer:
    the newest A (or the given one) with another option of the same checked metadata (task version, model hash),
    preferring options that carry their own replication (configurations of 2+ runs, runs measured here with
    per-query records) over imported single results."""
    def ident(ref: str) -> tuple:
        found = _rows(frame, ref)
        return tuple(found[["task", "task_version", "model_hash"]].iloc[0]) if len(found) else ()

    usable = [r for r in refs if answerable(frame, r)]
    for pool in (usable, refs):
        for first in pool if a is None else [a]:
            same = [refs.index(r) for r in pool if r != first and ident(r) == ident(first)]
            if same:
                return refs.index(first), same[0]
    first = refs.index(a) if a is not None else 0
    return first, 1 if first == 0 else 0


@st.cache_data(ttl=30, show_spinner="comparing")
def _compare(url: str, request: CompareRequest) -> ComparisonResult:
    return services.compare(request, store(url))


def side_figures(side: ComparisonSide) -> pd.DataFrame:
    """The compare record's figure of each run of a side with its within-run CI (the first MAX_RUNS_SHOWN)."""
    return pd.DataFrame([f.to_dict() for f in side.run_figures[:MAX_RUNS_SHOWN]],
                        columns=list(RunFigure.model_fields))


def _num(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.4g}"


def _interval(ci: dict[str, Any]) -> str:
    return f"{_num(ci['estimate'])} [{_num(ci['low'])}, {_num(ci['high'])}]"


def page(url: str) -> None:
    frame = titled_history("Compare", url)
    if frame is None:
        return
    c = st.columns(3)
    kind = c[0].radio("Compare", KINDS, horizontal=True, key="cmp_kind")
    task, scenario = pick_task_scenario(frame, c[1], c[2], "cmp", configurations_score(frame))
    choices = options(frame[(frame["task"] == task) & (frame["scenario"] == scenario)], kind, run_settings(url))
    if len(choices) < 2:
        st.error(f"{task} {scenario} has {len(choices)} {kind[:-1]}; a comparison needs two. What exists:")
        _what_exists(frame, kind)
        return
    refs = list(choices)
    subset = frame[(frame["task"] == task) & (frame["scenario"] == scenario)]
    c = st.columns(2)
    a = c[0].selectbox("A (baseline)", refs, index=default_pair(subset, refs)[0], format_func=choices.get,
                       key="cmp_a")
    b = c[1].selectbox("B (compared with A)", refs, index=default_pair(subset, refs, a)[1],
                       format_func=choices.get, key="cmp_b")
    c = st.columns(4)
    metric = c[0].selectbox("Figure", list(FIGURES), format_func=FIGURES.get, key="cmp_metric")
    margin = c[1].number_input("Equivalence margin (%)", min_value=0.1, max_value=50.0, value=2.0, step=0.5,
                               key="cmp_margin")
    confidence = c[2].selectbox("Confidence", [0.9, 0.95, 0.99], index=1, format_func="{:.0%}".format,
                                key="cmp_confidence")
    force = c[3].checkbox("Compare anyway (--force)", key="cmp_force",
                          help="Compare even when the task version or the model (its hash) differs between A and B.")
    if a == b:
        st.error(f"A and B are the same {kind[:-1]} ({choices[a]}): pick two different ones.")
        return
    if not answerable(subset, a) and not answerable(subset, b):
        st.info(f"{task} {scenario} holds only single imported MLPerf results here, one figure each without "
                f"per-query records, so no interval can be put on their difference: pick a task with runs "
                f"measured here, or configurations with 2+ runs (`infersight repro TASK -n 3` makes some).")
        return
    try:
        result = _compare(url, CompareRequest.parse(refs=(a, b), metric=metric or None, margin=margin / 100,
                                                    confidence=confidence, force=force))
    except InfersightError as exc:
        st.error(str(exc))
        return
    _show(url, result, choices)


def _what_exists(frame: pd.DataFrame, kind: str) -> None:
    column = "run_id" if kind == "runs" else "config_key"
    counts = frame.groupby(["task", "scenario"])[column].nunique().rename(kind).reset_index()
    st.dataframe(counts[counts[kind] >= 2], hide_index=True)


def _show(url: str, result: ComparisonResult, choices: dict[str, str]) -> None:
    comp, base = result.comparisons[0], result.baseline
    better = "lower" if result.lower_is_better else "higher"
    st.caption(f"{result.metric} ({better} is better); {result.unit} as the unit of replication; "
               f"{result.confidence:.0%} intervals; equivalence margin +-{result.margin:.1%}")
    for warning in result.warnings:
        st.warning(warning)
    cols = st.columns(2)
    for col, name, side in ((cols[0], "A", base), (cols[1], "B", comp)):
        with col:
            st.subheader(f"{name}: {choices.get(side.ref, side.ref)}")
            st.metric(f"{name}: geometric mean of {len(side.values)} {result.unit}", _num(side.geometric_mean))
            st.dataframe(side_figures(side), hide_index=True, width="stretch")
    _verdicts(result, comp)
    _cdfs(url, list(base.runs), list(comp.runs))


def _verdicts(result: ComparisonResult, comp: SideComparison) -> None:
    st.subheader("B against A")
    gm, md = comp.ratio_geometric_means, comp.ratio_medians
    cols = st.columns(3)
    cols[0].metric("Ratio of geometric means B/A [CI]", _interval(gm), help=gm["method"])
    cols[1].metric("Ratio of medians B/A [CI]", _interval(md), help=md["method"])
    cols[2].metric("Verdict", comp.verdict_text)
    verdict = {"equivalent": st.success, "different": st.warning}.get(comp.verdict, st.info)
    verdict(f"Difference: {comp.significance}. Equivalence: {comp.equivalence}. "
            f"Mann-Whitney U p = {comp.mann_whitney_p:.3g}."
            + (" Neither shown: more runs are needed." if comp.verdict == "inconclusive" else ""))
    with st.expander("Tests and the figures compared"):
        st.dataframe(pd.DataFrame([comp.model_dump(include={"n_a", "n_b", "welch_t", "welch_df", "welch_p",
                                                            "mann_whitney_u", "mann_whitney_p", "tost_p",
                                                            "q_value"})]), hide_index=True)
        st.dataframe({"A": pd.Series(result.baseline.values), "B": pd.Series(comp.values)})


def _cdfs(url: str, runs_a: list[int], runs_b: list[int]) -> None:
    series, missing = {}, []
    for name, runs in (("A", runs_a), ("B", runs_b)):
        for run_id in runs[:MAX_CDFS // 2]:
            lat = latencies_ms(url, int(run_id))
            if lat is None:
                missing.append(str(run_id))
            else:
                series[f"{name}: run {run_id}"] = lat
    if series:
        st.subheader("Latency CDFs")
        st.altair_chart(charts.latency_cdfs(series), width="stretch", height=CHART_HEIGHT)
    if missing:
        st.caption(f"No latency distribution for runs {', '.join(missing)}: imported MLPerf results publish "
                   f"no per-query records.")
