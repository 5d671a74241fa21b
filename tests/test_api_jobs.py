"""The REST API's jobs over real HTTP: `infersight serve` in a subprocess on loopback, httpx as the client,
real job workers on a real SQLite store. Jobs are started and followed through their server-sent events to
their runs, a long one is cancelled half-way; bad requests are problems naming the field."""

from __future__ import annotations

import json

import pytest
from _api_server import ApiServer

from infersight.api.accounts import add_user, create_token
from runner.store import Store

PROBLEM = "application/problem+json"
SHORT = {"kind": "run", "task": "digits", "backend": "null", "scenario": "single_stream", "quick": True,
         "scenario_settings": {"min_duration_ms": 100, "warmup_duration_ms": 0}}
LONG = {**SHORT, "backend": "onnxruntime",
        "scenario_settings": {"min_duration_ms": 300_000, "warmup_duration_ms": 0}}


@pytest.fixture(scope="module")
def jobs_api(tmp_path_factory, digits_models):
    folder = tmp_path_factory.mktemp("api-jobs")
    db = folder / "jobs.db"
    tokens = {}
    with Store(str(db)) as store:
        for role in ("viewer", "submitter", "admin"):
            add_user(store, f"{role}-user", role)
            tokens[role] = create_token(store, f"{role}-user")[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INFERSIGHT_JOBS_DIR", str(folder / "jobs"))
        server = ApiServer(str(db), folder / "server.log")
    yield {"server": server, "tokens": tokens, "db": str(db)}
    with server.client(tokens["admin"]) as client:  # never leave a worker measuring
        for job in client.get("/api/v1/jobs", params={"status": ["queued", "running"]}).json()["jobs"]:
            client.post(f"/api/v1/jobs/{job['id']}/cancel")
            _events(client, job["id"])
    server.stop()


def _events(client, job_id: int, until=None) -> list[tuple[str, str, dict]]:
    """Read the job's event stream: (event, id, job) per event, until it ends or `until(job)` holds."""
    events: list[tuple[str, str, dict]] = []
    fields: dict[str, str] = {}
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                continue  # keep-alive comment
            if line:
                key, _, value = line.partition(": ")
                fields[key] = value
                continue
            events.append((fields["event"], fields["id"], json.loads(fields["data"])))
            fields = {}
            if until is not None and until(events[-1][2]):
                break
    return events


def _problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def test_start_jobs_follow_their_events_to_their_runs_and_cancel_one(jobs_api):
    server, tokens = jobs_api["server"], jobs_api["tokens"]
    with server.client(tokens["submitter"]) as client:
        started = client.post("/api/v1/jobs", json=SHORT)
        assert started.status_code == 202, started.text
        job = started.json()
        assert (job["status"], job["submitted_by"]) == ("queued", "submitter-user")
        assert job["request"]["model_variant"] == "fp32"  # the defaults filled in
        assert started.headers["location"] == f"/api/v1/jobs/{job['id']}"
        long = client.post("/api/v1/jobs", json=LONG).json()  # waits for the first: one job at a time
        events = _events(client, job["id"])
    with server.client(tokens["viewer"]) as client:
        status = client.get(started.headers["location"]).json()
        run = client.get(f"/api/v1/runs/{status['run_ids'][0]}").json()
        listed = client.get("/api/v1/jobs", params={"status": "complete"}).json()["jobs"]
    assert [e for e, _, _ in events][-1] == "end" and {e for e, _, _ in events[:-1]} <= {"progress"}
    assert [int(i) for _, i, _ in events] == list(range(1, len(events) + 1))
    end = events[-1][2]
    assert end == status and end["status"] == "complete" and end["result"] == {"run_id": end["run_ids"][0]}
    assert [e[2]["progress"] for e in events] == sorted(e[2]["progress"] for e in events)
    assert (run["status"], run["backend_name"]) == ("complete", "null")
    assert [j["id"] for j in listed] == [job["id"]]

    with server.client(tokens["submitter"]) as client:
        _events(client, long["id"], until=lambda j: j["run_ids"] and "timed run" in (j["phase"] or ""))
        cancel = client.post(f"/api/v1/jobs/{long['id']}/cancel")
        assert cancel.status_code == 202 and cancel.json()["cancel_requested"]
        end = _events(client, long["id"])[-1]
    assert end[0] == "end" and end[2]["status"] == "cancelled"
    assert "cancelled while running" in end[2]["error"]
    with Store(jobs_api["db"]) as store:
        assert store.get_run(end[2]["run_ids"][0]).status == "aborted"


def test_bad_job_requests_are_problems_naming_the_field_and_queue_nothing(jobs_api):
    server, tokens = jobs_api["server"], jobs_api["tokens"]
    with server.client(tokens["submitter"]) as client:
        before = client.get("/api/v1/jobs").json()["jobs"]
        _problem(client.post("/api/v1/jobs", json={**SHORT, "threads": 2}), 422, "body.run.threads")
        _problem(client.post("/api/v1/jobs", json={**SHORT, "quick": "very"}), 422, "body.run.quick")
        _problem(client.post("/api/v1/jobs", json={**SHORT, "kind": "dance"}), 422)
        malformed = client.post("/api/v1/jobs", content=b'{"kind": "run",',
                                headers={"content-type": "application/json"})
        _problem(malformed, 422, "body")
        sweep = {"kind": "sweep", "sweep": {"name": "s", "tasks": ["digits"], "backends": [{"name": "null"}],
                                            "scenarios": [{"name": "nope"}]}}
        assert "job request: sweep: scenarios.0.name: unknown scenario 'nope'" in _problem(
            client.post("/api/v1/jobs", json=sweep), 422)["detail"]
        assert "no-such-task" in _problem(client.post("/api/v1/jobs", json={**SHORT, "task": "no-such-task"}),
                                          404)["detail"]
        for method, path in (("GET", "/api/v1/jobs/424242"), ("GET", "/api/v1/jobs/424242/events"),
                             ("POST", "/api/v1/jobs/424242/cancel")):
            assert "no job 424242" in _problem(client.request(method, path), 404)["detail"]
        _problem(client.get("/api/v1/jobs/0"), 422, "path.job_id")
        _problem(client.get("/api/v1/jobs", params={"status": "done"}), 422, "query.status.0")
        assert client.get("/api/v1/jobs").json()["jobs"] == before
    with server.client(tokens["viewer"]) as client:
        assert "jobs:submit" in _problem(client.post("/api/v1/jobs", json=SHORT), 403)["detail"]
