"""The Runs page: every stored run, and a drill-down into one run's cards, settings, logs and charts
(the same run view as the HTML run report: reports.services.describe_run)."""

from __future__ import annotations

import streamlit as st

from infersight.webapp._data import runs_table, store
from infersight.webapp._tables import show
from reports.services import DescribeRunRequest, describe_run

__all__ = ["page", "run_detail"]

LABELS = {"id": "Run", "task_name": "Task", "backend_name": "Backend", "scenario": "Scenario", "validity": "Validity",
          "headline_metric": "Headline", "headline_value": "Value", "headline_units": "Unit",
          "accuracy_value": "Accuracy (metric's unit)", "provenance": "Provenance", "status": "Status",
          "started_at": "Started (UTC)", "latency_p99_ms": "p99 latency (ms)",
          "samples_per_second": "Throughput (samples/s)"}


def page(url: str) -> None:
    st.title("Runs")
    table = runs_table(url)
    if table.empty:
        st.info(f"No runs in {url} yet: measure one with `infersight run digits --scenario offline` "
                f"or import MLPerf results with `infersight import mlperf PATH`.")
        return
    show(table, list(table.columns), LABELS)
    labels = {int(r.id): f"{r.id}: {r.task_name} {r.model_variant} / {r.backend_name} / {r.scenario} / {r.system}"
              for r in table.itertuples()}
    run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="run_id")
    run_detail(url, int(run_id))


def run_detail(url: str, run_id: int) -> None:
    """One run's headline, validity, accuracy, charts, settings, provenance, cards and performance log."""
    view = describe_run(DescribeRunRequest.parse(run=str(run_id)), store(url))
    context = view.context
    head, validity = context["headline"], context["validity"]
    st.subheader(view.title)
    cols = st.columns(3)
    cols[0].metric(head["metric"], head["text"], help=head["how"])
    cols[1].metric("validity", validity["verdict"], help=validity["why_non_compliant"])
    acc = context["accuracy"]
    value = "n/a" if acc["value"] is None else f"{acc['value']:.4g}"
    cols[2].metric(acc["metric"] or "accuracy", value, help=f"target {acc['target']}: {acc['verdict']}")
    for reason in validity["reasons"]:
        st.warning(reason)
    for note in (validity.get("lateness"), validity.get("recommendation")):
        if note:
            st.caption(note)
    for problem in context["completeness"]:
        st.error(problem)
    for chart in view.charts:
        st.vega_lite_chart(chart["spec"], width="stretch")
        if chart["caption"]:
            st.caption(chart["caption"])
    for note in context["chart_notes"]:
        st.caption(note)
    with st.expander("Settings and seeds"):
        st.dataframe(_rows(context["settings_rows"] + context["seed_rows"]), hide_index=True)
    with st.expander("Provenance"):
        st.dataframe(_rows(context["provenance_rows"]), hide_index=True)
    for card in context["cards"]:
        with st.expander(f"{card['kind']} card {str(card['hash'] or '')[:12]}"):
            st.dataframe(_rows(card["rows"]), hide_index=True)
    perf = store(url).perf_dataframe(run_id)
    st.download_button("Performance log (CSV)", perf.to_csv(index=False), f"run-{run_id}-perf.csv",
                       "text/csv", disabled=perf.empty)


def _rows(rows: list[tuple[str, object]]) -> dict[str, list[str]]:
    return {"field": [k for k, _ in rows], "value": [str(v) for _, v in rows]}
