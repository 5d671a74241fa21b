"""The job service (runner/jobs): real worker processes on a real SQLite store, the machine's measuring lock
held by the test to see jobs wait their turn, cancels that stop a run half-way, and a worker killed with
SIGKILL. Jobs measure the digits task on the null backend (single_stream, short minimums): under a second."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import psutil
import pytest

from runner.errors import JobNotFound, PluginNotFound, SettingsError
from runner.jobs import JobService, parse_request
from runner.jobs.worker import machine_lock
from runner.store.jobs import JobLog

WAIT_S = 120  # generous: the machine is shared; a job here takes about 2 s on a quiet one
SHORT = {"kind": "run", "task": "digits", "backend": "null", "scenario": "single_stream", "quick": True,
         "scenario_settings": {"min_duration_ms": 100, "warmup_duration_ms": 0}}
# onnxruntime: its thousands of queries a second keep a long run's memory small (the null backend's do not)
LONG = {**SHORT, "backend": "onnxruntime",
        "scenario_settings": {"min_duration_ms": 300_000, "warmup_duration_ms": 0}}


@pytest.fixture
def service(store, tmp_path):
    svc = JobService(store, home=tmp_path / "jobs")
    yield svc
    for job in svc.list(statuses=("queued", "running")):  # never leave a worker measuring after a test
        svc.cancel(job.id)
        svc.wait(job.id, WAIT_S)


def _until(service: JobService, job_id: int, done, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        job = service.get(job_id)
        if done(job):
            return job
        time.sleep(0.05)
    pytest.fail(f"job {job_id} never {what}: {service.get(job_id)}")


def test_jobs_wait_their_turn_oldest_first_and_a_cancel_stops_a_run_keeping_what_was_measured(service, store,
                                                                                                 tmp_path):
    with machine_lock(tmp_path / "jobs"):  # a measurement of someone else holds the machine
        first, never = service.submit(SHORT, "alice"), service.submit(SHORT, "carol")
        second, long = service.submit(SHORT, "bob"), service.submit(LONG, "dave")
        assert (first.status, first.kind, first.submitted_by, first.hostname) == ("queued", "run", "alice",
                                                                                    store.hostname)
        cancelled = service.cancel(never.id)  # a queued job is cancelled at once
        assert cancelled.status == "cancelled" and cancelled.finished_at is not None
        time.sleep(1.0)  # the workers have started and wait for the lock
        assert [service.get(j.id).status for j in (first, never, second, long)] == ["queued", "cancelled",
                                                                                    "queued", "queued"]
    seen = list(service.follow(first.id, poll_s=0.02, timeout_s=WAIT_S))
    first, second = seen[-1], service.wait(second.id, WAIT_S)
    assert first.status == second.status == "complete" and first.error is None and first.progress == 1.0
    assert second.started_at >= first.finished_at  # never two at once, oldest first
    assert first.result == {"run_id": first.run_ids[0]} and len(first.run_ids) == 1
    assert first.pid != os.getpid() and first.finished_at >= first.started_at >= first.created_at
    run = store.get_run(first.run_ids[0])
    assert (run.status, run.backend_name, run.scenario) == ("complete", "null", "single_stream")
    progress = [j.progress for j in seen if j.status == "running"]
    assert progress == sorted(progress) and len(progress) >= 2, progress
    assert service.list()[-1] == first  # a reload (any later read) finds it as it ended

    long = _until(service, long.id, lambda j: j.run_ids and _measured(store, j.run_ids[0]), "stored queries")
    assert service.cancel(long.id).cancel_requested
    long = service.wait(long.id, WAIT_S)
    assert long.status == "cancelled" and "cancelled while running" in long.error
    assert long.result == {"run_id": long.run_ids[0]}
    aborted = store.get_run(long.run_ids[0])
    assert aborted.status == "aborted" and "interrupted" in aborted.error
    assert len(store.read_perf_samples(aborted.id)["completed_ns"]) > 0  # what was measured is kept
    assert service.cancel(long.id).status == "cancelled"  # cancelling again changes nothing
    assert service.get(never.id).run_ids == () and len(store.list_runs()) == 3


def test_a_restart_fails_jobs_whose_worker_died_and_starts_workers_for_queued_ones(service, store, tmp_path):
    job = service.submit(LONG, "alice")
    job = _until(service, job.id, lambda j: j.run_ids, "created its run")
    waiting = JobLog(store).submit("run", LONG, submitted_by="bob")  # queued by a service that died at once
    os.kill(job.pid, signal.SIGKILL)
    _until(service, job.id, lambda j: not _alive(j.pid), "lost its worker")
    assert service.get(job.id).status == "running"  # nobody has looked yet
    JobService(store, home=tmp_path / "jobs")  # the app or server starts again
    job = service.get(job.id)
    assert job.status == "failed" and f"worker process {job.pid}" in job.error
    store.recover_aborted()
    assert store.get_run(job.run_ids[0]).status == "aborted"
    _until(service, waiting.id, lambda j: j.status == "running", "was claimed by a new worker")
    service.cancel(waiting.id)
    assert service.wait(waiting.id, WAIT_S).status == "cancelled"


@pytest.mark.parametrize("request_, error, words", [
    ({**SHORT, "threads": 2}, SettingsError, "job request: run.threads: unknown field"),
    ({**SHORT, "quick": "very"}, SettingsError, "job request: run.quick"),
    ({**SHORT, "kind": "dance"}, SettingsError, "job request: kind: 'dance' is not a kind of job: give one"),
    ({"task": "digits"}, SettingsError, "job request: kind: missing"),
    ([1, 2], SettingsError, "job request"),
    ({**SHORT, "task": "no-such-task"}, PluginNotFound, "no-such-task"),
    ({**SHORT, "kind": "peak", "scenario": "offline"}, SettingsError, "peak.scenario"),
    ({"kind": "sweep", "sweep": {"name": "s", "tasks": ["digits"], "backends": [{"name": "null"}],
                                 "scenarios": [{"name": "offline", "settings": {"min_duration_ms": -1}}]}},
     Exception, "job request: sweep: scenarios.0.settings.min_duration_ms"),
])
def test_bad_requests_are_refused_naming_the_field_and_nothing_is_queued(service, request_, error, words):
    with pytest.raises(error) as caught:
        service.submit(request_, "alice")
    assert words in str(caught.value)
    assert service.list() == []


def test_an_unknown_job_is_named(service):
    with pytest.raises(JobNotFound, match="no job 99"):
        service.get(99)
    with pytest.raises(JobNotFound):
        service.cancel(99)


def _measured(store, run_id: int) -> bool:
    return len(store.read_perf_samples(run_id)["completed_ns"]) > 0


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_peak_search_and_a_sweep_run_as_jobs_with_their_runs(service, store):
    peak = service.submit({**SHORT, "kind": "peak", "scenario": "server",
                           "scenario_settings": {"min_duration_ms": 100, "warmup_duration_ms": 0,
                                                 "min_query_count": 100},
                           "search": {"start_qps": 200, "max_probes": 1, "repeats_near_edge": 1}}, "alice")
    sweep = service.submit({"kind": "sweep", "sweep": {
        "name": "tiny", "tasks": ["digits"], "backends": [{"name": "null"}], "quick": True,
        "scenarios": [{"name": "single_stream",
                       "settings": {"min_duration_ms": 100, "warmup_duration_ms": 0}}]}},
        "bob")
    peak, sweep = service.wait(peak.id, WAIT_S), service.wait(sweep.id, WAIT_S)
    assert peak.status == "complete" and len(peak.run_ids) == 1, peak
    search = store.get_run(peak.run_ids[0]).search_id
    assert peak.result == {"search_id": search, "peak_qps": peak.result["peak_qps"]} and search is not None
    assert sweep.status == "complete" and len(sweep.run_ids) == 1, sweep
    assert sweep.result["sweep_status"] == "complete"
    assert {store.get_run(r).label for r in sweep.run_ids} == {"tiny"}


def test_the_run_pages_form_makes_valid_requests_of_every_kind():
    from infersight.webapp.run_page import job_request

    fields = {"task": "digits", "backend": "null", "scenario": "server", "model_variant": "fp32",
              "quick": True,
              "label": "", "backend_settings": "", "scenario_settings": "target_qps: 300\n",
              "search": {"repeats_near_edge": 1, "max_probes": 3}, "scenarios": ["single_stream", "offline"],
              "variants": ["fp32", "int8"], "repeats": 2}
    for kind in ("run", "peak", "sweep"):
        parse_request(job_request(kind, fields))
    sweep = parse_request(job_request("sweep", fields)).sweep
    assert (sweep.tasks, sweep.model_variants, sweep.repeats) == (["digits"], ["fp32", "int8"], 2)
    assert [s.settings for s in sweep.scenarios] == [{"target_qps": 300}] * 2
    with pytest.raises(SettingsError, match="scenario settings: write KEY: VALUE lines"):
        job_request("run", {**fields, "scenario_settings": "- 1\n- 2"})


def test_the_jobs_table_on_postgresql(pg_store_url, tmp_path):
    from runner.store import Store

    gone = subprocess.Popen(["true"])
    gone.wait()
    with Store(pg_store_url) as store:
        log = JobLog(store)
        first = log.submit("run", SHORT, submitted_by="bob")
        second = log.submit("peak", SHORT, submitted_by="ana")
        assert log.claim_next(pid=os.getpid()).id == first.id  # oldest first, each claimed once
        assert log.claim_next(pid=gone.pid).id == second.id and log.claim_next(pid=os.getpid()) is None
        log.progress(first.id, 0.5, "half")
        log.add_run(first.id, 7)
        log.add_run(first.id, 8)
        assert (log.get(first.id).progress, log.get(first.id).run_ids) == (0.5, (7, 8))
        assert log.cancel(first.id).cancel_requested
        log.finish(first.id, "cancelled", error="asked", result={"run_id": 8})
        log.finish(first.id, "complete")  # a job ends once
        JobService(store, home=tmp_path / "jobs")  # its start fails the job whose worker is gone
        assert [(j.id, j.status) for j in log.list()] == [(second.id, "failed"), (first.id, "cancelled")]
        assert log.get(first.id).result == {"run_id": 8} and "worker process" in log.get(second.id).error
