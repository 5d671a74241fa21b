"""The runner's service layer (runner.services): each workflow takes a validated frozen request and returns
frozen records read back from a real SQLite store; backend shortcuts as each backend declares them; the
Store's public transaction and its one crash recovery."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from pydantic import ValidationError

from infersight.cli._run_options import run_request
from runner.errors import SettingsError
from runner.loadgen.result import ScenarioResult
from runner.services import (PeakSearchRecord, PeakSearchRequest, PeakSettings, ReplicaReporter, ReplicasRequest,
                             RunRecord, RunRequest, SweepRecord, SweepRequest, backend_options, measure_replicas,
                             measure_run, search_peak, sweep_matrix)
from runner.store.schema import peak_searches
from runner.store.searches import SearchLog

SHORT = {"min_duration_ms": 100, "warmup_duration_ms": 0, "min_query_count": 64}


def _null(scenario: str = "single_stream", **settings) -> RunRequest:
    return RunRequest("digits", "null", scenario, scenario_settings={**SHORT, **settings}, quick=True)


def test_measure_run_returns_the_stored_run_as_a_frozen_record(store, digits_models):
    run = measure_run(_null(), store)
    assert isinstance(run, RunRecord) and run == store.get_run(run.id) == store.list_runs()[0]
    assert (run.status, run.validity, run.backend_name, run.scenario) == ("complete", "VALID", "null", "single_stream")
    assert set(run.card_hashes) == {"task", "model", "backend", "system"} and run.summary["query_count"] >= 64
    with pytest.raises(ValidationError):
        run.status = "failed"
    assert run.to_dict()["id"] == run.id and "imported" not in run.to_dict()


def test_measure_replicas_labels_and_reports_each_replica(store, digits_models):
    seen = []

    class Seen(ReplicaReporter):
        def replica_done(self, index: int, total: int, run: RunRecord) -> None:
            seen.append((index, total, run.id))

    request = ReplicasRequest(run=_null(), replicas=2)
    replicas = measure_replicas(request, store, Seen())
    assert [r.label for r in replicas.runs] == ["repro 1/2", "repro 2/2"]
    assert seen == [(1, 2, replicas.run_ids[0]), (2, 2, replicas.run_ids[1])]
    assert {r.card_hashes["model"] for r in replicas.runs} == {replicas.runs[0].model_hash}


def test_bad_requests_name_the_field_and_write_nothing(store, digits_models):
    with pytest.raises(SettingsError, match=r"^ReplicasRequest: replicas 1: Input should be greater than or equal to 2"):
        ReplicasRequest.parse(run=_null(), replicas=1)
    with pytest.raises(SettingsError, match=r"^RunRequest: quick 'maybe': Input should be a valid boolean"):
        RunRequest.parse(task="digits", quick="maybe")
    with pytest.raises(SettingsError, match="a peak-QPS search needs scenario server, not 'offline'"):
        PeakSearchRequest.parse(run=_null("offline"))
    with pytest.raises(SettingsError, match="resume True: unknown field"):
        SweepRequest.parse(file="x.yaml", resume=True)
    with pytest.raises(SettingsError, match="min_duration_ms"):  # checked before the first replica
        measure_replicas(ReplicasRequest(run=_null(min_duration_ms=-1), replicas=2), store)
    assert store.list_runs() == []


def test_requests_and_results_are_frozen():
    request = _null()
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.quick = False
    assert dataclasses.replace(request, label="x").label == "x" and request.label is None
    result = ScenarioResult("offline", "samples_per_second", 1.0, "samples/s", True, [], {"a": 1}, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.valid = False
    more = result.with_summary(b=2)
    assert more.summary == {"a": 1, "b": 2} and result.summary == {"a": 1}


def test_search_peak_returns_the_search_with_its_probes(store, digits_models):
    request = PeakSearchRequest(run=_null("server", target_qps=2000.0, latency_bound_ms=1000, min_query_count=500),
                                search=PeakSettings(max_qps=4000, repeats_near_edge=1, tolerance=0.5, max_probes=2))
    search = search_peak(request, store)
    assert isinstance(search, PeakSearchRecord) and search == SearchLog(store).get(search.id)
    assert search.status == "complete" and search.peak_qps == 4000
    assert [p.target_qps for p in search.runs] == [2000, 4000]
    assert all(store.get_run(p.run_id).search_id == search.id for p in search.runs)


def test_sweep_matrix_runs_the_file_and_returns_its_cells(store, digits_models, tmp_path):
    path = tmp_path / "one.yaml"
    path.write_text("name: one\ntasks: [digits]\nbackends: [{name: 'null'}]\nquick: true\nscenarios:\n"
                    "  - name: single_stream\n    settings: {min_duration_ms: 100, warmup_duration_ms: 0, "
                    "min_query_count: 64}\n")
    sweep = sweep_matrix(SweepRequest(file=path), store)
    assert isinstance(sweep, SweepRecord) and sweep.status == "complete" and len(sweep.cells) == 1
    cell = sweep.cells[0]
    assert cell.status == "complete" and store.get_run(cell.run_id).validity == cell.validity == "VALID"


def test_backend_shortcuts_are_each_backends_own_settings():
    assert backend_options("onnxruntime", {"threads": 2, "provider": ("cpu",), "batch_size": None}) == {
        "intra_op_threads": 2, "providers": ["cpu"]}
    assert backend_options("openvino", {"threads": 2, "batch_size": 8, "provider": ()}) == {
        "inference_num_threads": 2, "batch_size": 8}
    with pytest.raises(SettingsError) as found:
        backend_options("openvino", {"provider": ("cpu",)})
    assert str(found.value).startswith("--provider does not apply to backend 'openvino'")
    assert "inference_num_threads" in str(found.value) and "--backend-set KEY=VALUE" in str(found.value)
    with pytest.raises(SettingsError, match="--threads does not apply to backend 'null'"):
        backend_options("null", {"threads": 1})


def test_threads_reach_openvino(store, digits_models):
    """`infersight run digits --backend openvino --threads 2`: the CLI's options make this request."""
    request = run_request("digits", backend="openvino", scenario="offline", model_variant="fp32", sets=(
        "min_duration_ms=50", "warmup_duration_ms=0", "min_sample_count=64"), backend_sets=(), cpus=None, quick=True,
        threads=2, batch_size=None, provider=())
    assert request.backend_settings["inference_num_threads"] == 2
    run = measure_run(request, store)
    # OpenVINO reports what it applied: fewer threads than asked where fewer CPUs are free to this process
    assert run.status == "complete" and 1 <= run.settings["backend"]["inference_num_threads"] <= 2
    assert store.get_card("backend", run.backend_hash)["settings"] == run.settings["backend"]


def test_public_transaction_commits_or_rolls_back(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            conn.execute(peak_searches.insert().values(task_name="t", backend_name="b", scenario="server", request={},
                                                       status="running", hostname="h", started_at=_now()))
            raise RuntimeError("no commit")
    with store.transaction(write=False) as conn:
        assert conn.execute(peak_searches.select()).first() is None


def test_recover_aborted_also_marks_a_dead_search(store):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    log = SearchLog(store)
    dead, alive = (log.open(task_name="digits", backend_name="null", scenario="server", request={}) for _ in "ab")
    with store.transaction() as conn:
        conn.execute(peak_searches.update().where(peak_searches.c.id == dead).values(request={"pid": gone.pid}))
    store.recover_aborted()
    assert (log.get(dead).status, log.get(alive).status) == ("aborted", "running")


def _now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)
