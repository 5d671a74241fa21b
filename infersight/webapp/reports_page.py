"""The Reports page: pick a kind of report (run, comparison, decision, quarterly trends), fill in its
inputs, generate it and download the self-contained HTML file. Each form makes a report request and the
page calls the function behind `infersight report run|compare|decision|trend` (reports.services.render_report),
so the file is the one the command line writes."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from analysis.services import CompareRequest
from engine.services import RecommendRequest
from infersight.webapp import compare as compare_page
from infersight.webapp._data import history, runs_table, store
from infersight.webapp._question import ask
from infersight.webapp.recommend import _available, generative
from reports.services import (CompareReportRequest, DecisionReportRequest, ReportRequest, RunReportRequest,
                             TrendReportRequest, render_report)
from runner.errors import InfersightError

__all__ = ["page", "KINDS"]

KINDS = {"run": "Run report", "compare": "Comparison", "decision": "Decision", "trend": "Quarterly trends"}
Maker = Callable[[], ReportRequest]  # the form's request, made when the form is sent


def page(url: str) -> None:
    st.title("Reports")
    st.caption("Self-contained HTML files that open and print with no network: the same reports as "
               "`infersight report run|compare|decision|trend`.")
    if runs_table(url).empty:
        st.info(f"No runs in {url} yet: measure some with `infersight run` or import MLPerf results.")
        return
    kind = st.radio("Report", list(KINDS), format_func=KINDS.get, horizontal=True, key="rep_kind")
    make = {"run": _run_form, "compare": _compare_form, "decision": _decision_form, "trend": _trend_form}[kind](url)
    if make is None:
        return
    if st.session_state.pop("rep_go", False):
        try:
            with st.spinner("writing the report"):
                report = render_report(make(), store(url))
        except InfersightError as exc:
            st.session_state.pop("rep_html", None)
            st.error(str(exc))
            return
        st.session_state["rep_html"] = (kind, report.file_name, report.html)
    done = st.session_state.get("rep_html")
    if done and done[0] == kind:
        _, name, html = done
        st.success(f"{name}: {len(html.encode()) / 1e6:.2f} MB")
        st.download_button("Download the HTML report", html, name, "text/html", key="rep_download")


def _submit(label: str = "Generate") -> None:
    """The form's submit button; a click is remembered for the page to act on after the form."""
    if st.form_submit_button(label):
        st.session_state["rep_go"] = True


def _note() -> str:
    return st.text_area("Note shown at the top of the report (optional)", key="rep_note", height=68)


def _run_form(url: str) -> Maker | None:
    table = runs_table(url)
    labels = {int(r.id): f"{r.id}: {r.task_name} {r.model_variant} / {r.backend_name} / {r.scenario} / {r.system}"
              for r in table.itertuples()}
    with st.form("rep_run_form"):
        run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="rep_run")
        _submit()
    return lambda: RunReportRequest.parse(run=str(run_id))


def _compare_form(url: str) -> Maker | None:
    frame = history(url)
    what = st.radio("Compare", compare_page.KINDS, index=1, horizontal=True, key="rep_cmp_kind")
    choices = compare_page.options(frame, what, compare_page.run_settings(url))
    refs = list(choices)
    if len(refs) < 2:
        st.info(f"Fewer than two {what} with a figure to compare.")
        return None
    a, b = compare_page.default_pair(frame, refs)
    with st.form("rep_compare_form"):
        picked = st.multiselect("Baseline first, then the others", refs, default=[refs[a], refs[b]],
                                format_func=choices.get, key="rep_cmp_refs")
        c = st.columns(2)
        margin = c[0].number_input("Equivalence margin (fraction)", 0.001, 0.5, 0.02, format="%.3f", key="rep_margin")
        force = c[1].checkbox("Compare even when task version or model differ", key="rep_force")
        note = _note()
        _submit()
    return lambda: CompareReportRequest.parse(
        comparison=CompareRequest.parse(refs=picked, margin=margin, force=force), note=note)


def _decision_form(url: str) -> Maker | None:
    held = _available(url)
    if held.empty:
        st.info("No complete VALID runs to recommend from.")
        return None
    notes: list[str] = []
    fields = ask(held, "rep", generative(url), extra=lambda: notes.append(_note()), submit=_submit)
    return lambda: DecisionReportRequest.parse(question=RecommendRequest.parse(**fields),
                                               note=notes[0] if notes else "")


def _trend_form(url: str) -> Maker | None:
    frame = history(url)
    if frame.empty:
        st.info("No complete runs with a headline figure to follow over time.")
        return None
    quarters = sorted({str(p) for p in frame["started_at"].dt.tz_convert(None).dt.to_period("Q")}, reverse=True)
    tasks = ["", *sorted(frame["task"].unique())]
    scenarios = ["", *sorted(frame["scenario"].unique())]
    with st.form("rep_trend_form"):
        c = st.columns(3)
        quarter = c[0].selectbox("Quarter", quarters, key="rep_quarter")
        task = c[1].selectbox("Task", tasks, format_func=lambda t: t or "every task", key="rep_trend_task")
        scenario = c[2].selectbox("Scenario", scenarios, format_func=lambda s: s or "every scenario",
                                  key="rep_trend_scenario")
        note = _note()
        _submit()
    return lambda: TrendReportRequest.parse(quarter=quarter, task=task or None, scenario=scenario or None,
                                            note=note)
