"""The Run page: start a run, a peak-QPS search or a sweep on the machine that serves the app, follow its
progress, cancel it, and land on its result and its report.

Jobs go through the job service (runner.jobs: the same one as the REST API's /jobs): queued in the store,
one measuring job at a time on this machine, each in its own worker process. The job followed is in the
URL (`?page=Run&job=N`), so a page reload, or a restart of the app, finds it again.
"""

from __future__ import annotations

import getpass
from typing import Any

import pandas as pd
import streamlit as st

from infersight.webapp._data import store
from infersight.webapp._tables import show
from infersight.webapp.runs import run_detail
from reports.run import render_run_report
from runner import registry
from runner.errors import InfersightError, SettingsError
from runner.jobs import JobService
from runner.loading import load_yaml_text
from runner.store import SearchLog
from runner.store.jobs import Job
from runner.store.sweeps import SweepLog
from runner.user_tasks import open_task

__all__ = ["page", "KINDS", "job_request"]

KINDS = {"run": "One run", "peak": "Peak-QPS search (server)", "sweep": "Sweep"}
DEFAULTS = {"task": "digits", "backend": "onnxruntime", "scenario": "single_stream"}  # an answer in seconds
REFRESH_S = 1.0


@st.cache_resource(show_spinner=False)
def service(url: str) -> JobService:
    """The job service of the store at `url`, made once per app process (failing dead workers' jobs)."""
    return JobService(store(url))


@st.cache_data(ttl=300, show_spinner=False)
def task_options(task: str) -> tuple[list[str], list[str]]:
    """A task's scenarios and model variants."""
    opened = open_task(task)
    return list(opened.card.scenarios), list(opened.variants)


def page(url: str) -> None:
    st.title("Run")
    st.caption("Measure a configuration on the machine that serves this app. Jobs wait their turn: one "
               "measuring job runs at a time, so runs never disturb each other. The job's progress survives "
               "a page reload.")
    jobs = service(url)
    if not store(url).read_only:
        _form(jobs)
    _follow(url, jobs)


def _pick(column: Any, label: str, options: list[str], default: str, key: str) -> str:
    index = options.index(default) if default in options else 0
    return column.selectbox(label, options, index=index, key=key)


def _form(jobs: JobService) -> None:
    kind = st.radio("Start", list(KINDS), format_func=KINDS.get, horizontal=True, key="job_kind")
    c = st.columns(4)
    task = _pick(c[0], "Task", registry.names("task"), DEFAULTS["task"], "job_task")
    scenarios, variants = task_options(task)
    backend = _pick(c[1], "Backend", registry.names("backend"), DEFAULTS["backend"], "job_backend")
    fields: dict[str, Any] = {"task": task, "backend": backend}
    if kind == "sweep":
        fields["scenarios"] = c[2].multiselect("Scenarios", scenarios, default=_first(scenarios),
                                               key="job_scenarios")
        fields["variants"] = c[3].multiselect("Model variants", variants, default=variants[:1],
                                              key="job_variants")
    else:
        server = ["server"] if "server" in scenarios else []
        fields["scenario"] = _pick(c[2], "Scenario", server if kind == "peak" else scenarios,
                                   DEFAULTS["scenario"], "job_scenario")
        fields["model_variant"] = _pick(c[3], "Model variant", variants, variants[0], "job_variant")
    o = st.columns([1, 3])
    fields["quick"] = o[0].checkbox("Quick run", value=True, key="job_quick",
                                    help="1 s minimums: an answer in seconds, marked non-compliant.")
    fields["label"] = o[1].text_input("Label (optional)", key="job_label")
    with st.expander("Settings"):
        s = st.columns(2)
        fields["backend_settings"] = s[0].text_area("Backend settings (YAML)", key="job_backend_set",
                                                    height=80, placeholder="intra_op_threads: 1")
        fields["scenario_settings"] = s[1].text_area("Scenario settings (YAML)", key="job_scenario_set",
                                                     height=80, placeholder="min_duration_ms: 2000")
        if kind == "peak":
            fields["search"] = _peak_settings()
        if kind == "sweep":
            fields["repeats"] = st.number_input("Repeats", 1, 100, 1, key="job_repeats")
    if st.button(f"Start the {KINDS[kind].lower()}", type="primary", key="job_start"):
        _start(jobs, kind, fields)


def _first(values: list[str]) -> list[str]:
    return [DEFAULTS["scenario"]] if DEFAULTS["scenario"] in values else values[:1]


def _peak_settings() -> dict[str, Any]:
    p = st.columns(3)
    start = p[0].number_input("Start QPS (0: the task card's)", 0.0, 1e7, 0.0, key="job_start_qps")
    repeats = p[1].number_input("Runs per QPS near the knee", 1, 20, 3, key="job_repeats_edge")
    probes = p[2].number_input("At most this many probe runs", 1, 200, 20, key="job_max_probes")
    search: dict[str, Any] = {"repeats_near_edge": int(repeats), "max_probes": int(probes)}
    if start > 0:
        search["start_qps"] = float(start)
    return search


def _start(jobs: JobService, kind: str, fields: dict[str, Any]) -> None:
    try:
        job = jobs.submit(job_request(kind, fields), f"{getpass.getuser()} (app)")  # checks, queues, starts
    except InfersightError as exc:
        st.error(str(exc))
        return
    st.query_params["job"] = str(job.id)


def job_request(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The job request of the form's fields (settings written as YAML text are parsed here)."""
    settings = {name: _yaml(fields.get(name, ""), name) for name in ("backend_settings", "scenario_settings")}
    label = fields.get("label") or None
    if kind == "sweep":
        sweep = {"name": f"app-{pd.Timestamp.now(tz='UTC'):%Y%m%d-%H%M%S}", "tasks": [fields["task"]],
                 "model_variants": fields["variants"], "quick": fields["quick"], "repeats": fields["repeats"],
                 "backends": [{"name": fields["backend"], "settings": settings["backend_settings"]}],
                 "scenarios": [{"name": name, "settings": settings["scenario_settings"]}
                               for name in fields["scenarios"]],
                 "label": label}
        return {"kind": "sweep", "sweep": sweep}
    request = {"kind": kind, "label": label, **settings,
               **{name: fields[name] for name in ("task", "backend", "scenario", "model_variant", "quick")}}
    if kind == "peak":
        request["search"] = fields["search"]
    return request


def _yaml(text: str, name: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    data, _ = load_yaml_text(text, name.replace("_", " "))
    if not isinstance(data, dict):
        raise SettingsError(f"{name.replace('_', ' ')}: write KEY: VALUE lines (a YAML mapping)")
    return data


def _follow(url: str, jobs: JobService) -> None:
    listed = jobs.list(limit=50)
    if not listed:
        st.info("No jobs yet: start one above.")
        return
    ids = [j.id for j in listed]
    asked = st.query_params.get("job")
    chosen = int(asked) if asked and asked.isdigit() and int(asked) in ids else ids[0]
    labels = {j.id: f"job {j.id}: {j.kind} {_what(j)} (by {j.submitted_by}, {j.created_at:%Y-%m-%d %H:%M})"
              for j in listed}  # nothing that changes: a keyed select box keeps the labels it was first given
    job_id = st.selectbox("Job", ids, index=ids.index(chosen), format_func=labels.get,
                          key=f"job_pick_{chosen}")  # a new key when the job followed changes
    st.query_params["job"] = str(job_id)
    current = jobs.get(job_id)
    panel = st.fragment(run_every=None if current.finished else REFRESH_S)(_job_panel)
    panel(url, jobs, job_id, current.finished)
    with st.expander("Every job"):
        _jobs_table(listed)


def _what(job: Job) -> str:
    r = job.request
    if job.kind == "sweep":
        return r["sweep"]["name"]
    return f"{r['task']} {r['model_variant']} / {r['backend']} / {r['scenario']}"


def _job_panel(url: str, jobs: JobService, job_id: int, was_finished: bool) -> None:
    job = jobs.get(job_id)
    if job.finished and not was_finished:
        st.rerun()  # draw the result with the whole page (and stop refreshing)
    st.subheader(f"Job {job.id}: {KINDS[job.kind].lower()}, {job.status}")
    if not job.finished:
        st.progress(job.progress, text=job.phase or "waiting for the machine (another job is measuring)")
        if st.button("Cancel", key=f"job_cancel_{job.id}", disabled=job.cancel_requested):
            jobs.cancel(job.id)
            st.rerun(scope="fragment")
        if job.cancel_requested:
            st.caption("Cancelling: the run is being stopped; what was measured is kept.")
        return
    (st.success if job.status == "complete" else st.error if job.status == "failed" else st.warning)(
        f"{job.status} after {_took(job)}" + (f": {job.error}" if job.error else ""))
    _result(url, job)


def _took(job: Job) -> str:
    if job.started_at is None or job.finished_at is None:
        return "never starting"
    return f"{(job.finished_at - job.started_at).total_seconds():.1f} s"


def _result(url: str, job: Job) -> None:
    result = job.result or {}
    if result.get("sweep_id") is not None:
        cells = pd.DataFrame(SweepLog(store(url)).get(result["sweep_id"])["cells"])
        columns = ["position", "status", "reason", "run_id", "validity", "headline_metric", "headline_value",
                   "headline_units"]
        show(cells, columns, {"run_id": "Run", "headline_metric": "Headline", "position": "Cell"})
    elif result.get("search_id") is not None:
        _search(url, result["search_id"])
    if job.run_ids:
        _run_result(url, job.run_ids[-1] if result.get("run_id") is None else result["run_id"])


def _search(url: str, search_id: int) -> None:
    found = (SearchLog(store(url)).get(search_id).get("result") or {})
    peak = found.get("peak_qps")
    st.metric("Peak target QPS (VALID)", "none found" if peak is None else f"{peak:,.6g}")
    if found.get("table"):
        show(pd.DataFrame(found["table"]), ["target_qps", "runs", "valid", "p_valid"],
             {"target_qps": "Target QPS", "runs": "Runs", "valid": "VALID", "p_valid": "P(VALID)"})
    if found.get("note"):
        st.caption(found["note"])


def _run_result(url: str, run_id: int) -> None:
    run_detail(url, run_id)
    st.download_button("Run report (HTML)", render_run_report(store(url), run_id), f"run-{run_id}.html",
                       "text/html", key=f"job_report_{run_id}")


def _jobs_table(listed: list[Job]) -> None:
    frame = pd.DataFrame([{"id": j.id, "kind": j.kind, "what": _what(j), "status": j.status,
                           "progress": j.progress, "submitted_by": j.submitted_by, "created_at": j.created_at,
                           "runs": ", ".join(map(str, j.run_ids))} for j in listed])
    labels = {"id": "Job", "kind": "Kind", "what": "What", "status": "Status", "progress": "Progress",
              "submitted_by": "By", "created_at": "Queued (UTC)", "runs": "Runs"}
    show(frame, list(frame.columns), labels)
