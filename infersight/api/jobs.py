"""Jobs: start a run, a sweep or a peak search on the server's machine, follow it (status, or progress as
server-sent events), cancel it. Every call goes to the job service (runner.jobs), the same one as the app's
Run page: one measuring job at a time on the machine, each in its own worker process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from infersight.api.accounts import Principal
from infersight.api.auth import require
from infersight.api.problems import NOT_FOUND
from runner.jobs import JOB_KINDS, JOB_STATUSES, Job, JobRequest, JobService

router = APIRouter(prefix="/jobs", tags=["jobs"])

POLL_S = 0.25  # how often the event stream looks at its job

Status = Literal[JOB_STATUSES]  # type: ignore[valid-type]
Kind = Literal[JOB_KINDS]  # type: ignore[valid-type]
JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A job's id.", examples=[7])]

_RUN_EXAMPLE = {"kind": "run", "task": "digits", "backend": "onnxruntime", "scenario": "single_stream",
                "quick": True}
_EXAMPLES = {
    "run": {"summary": "One quick run", "value": _RUN_EXAMPLE},
    "peak": {"summary": "A peak-QPS search", "value": {
        "kind": "peak", "task": "digits", "backend": "onnxruntime", "quick": True,
        "search": {"start_qps": 500, "repeats_near_edge": 2, "max_probes": 12}}},
    "sweep": {"summary": "A sweep over two scenarios", "value": {"kind": "sweep", "sweep": {
        "name": "digits-scenarios", "tasks": ["digits"], "backends": [{"name": "onnxruntime"}],
        "scenarios": [{"name": "single_stream"}, {"name": "offline"}], "quick": True}}},
}
_JOB_EXAMPLE = {
    "id": 7, "kind": "run", "request": {**_RUN_EXAMPLE, "model_variant": "fp32"}, "status": "running",
    "progress": 0.42, "phase": "single_stream: warm-up and timed run", "run_ids": [42], "result": None,
    "error": None, "submitted_by": "ana", "hostname": "lab-box-1", "cancel_requested": False,
    "created_at": "2026-12-01T10:00:00Z", "started_at": "2026-12-01T10:00:02Z", "finished_at": None}


class JobOut(BaseModel):
    """A job: what was asked, where it stands, the runs it made so far and what it produced."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_JOB_EXAMPLE]})
    id: int
    kind: Kind
    request: dict[str, Any] = Field(description="The job request as validated (defaults filled in).")
    status: Status
    progress: float = Field(description="How far it is, 0 to 1 (a peak search: its current probe).")
    phase: str | None = Field(description="What it is doing now.")
    run_ids: list[int] = Field(description="Every run it made so far (GET /api/v1/runs/{id}).")
    result: dict[str, Any] | None = Field(description="What it produced: run_id, search_id or sweep_id.")
    error: str | None = Field(description="Why it failed or was cancelled.")
    submitted_by: str
    hostname: str = Field(description="The machine that runs it.")
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        """The response of a stored job."""
        return cls.model_validate({k: v for k, v in job.to_dict().items() if k != "pid"})


class JobList(BaseModel):
    """Jobs, newest first."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"jobs": [_JOB_EXAMPLE]}]})
    jobs: list[JobOut]


def service(request: Request) -> JobService:
    """The app's job service (made by create_app)."""
    return request.app.state.jobs


def _existing(request: Request, job_id: JobId) -> Job:
    """The job of the path (JobNotFound, answered 404, before any stream starts)."""
    return service(request).get(job_id)


@router.post("", status_code=202, response_model=JobOut, summary="Start a run, sweep or peak search",
             responses={202: {"description": "Queued; follow it at the Location header's URL."}})
def start_job(request: Request, response: Response,
              job: Annotated[JobRequest, Body(openapi_examples=_EXAMPLES)],
              principal: Principal = require("jobs:submit")) -> JobOut:
    """Check the request (bad input answers 4xx and queues nothing), queue it on this machine and start its
    worker. It runs when the machine is free: one measuring job at a time."""
    queued = service(request).submit(job, principal.user)
    response.headers["Location"] = f"{request.url.path}/{queued.id}"
    return JobOut.of(queued)


@router.get("", response_model=JobList, summary="List jobs")
def list_jobs(request: Request,
              status: Annotated[list[Status] | None, Query(description="Only jobs with these statuses.")]
              = None,
              limit: Annotated[int, Query(ge=1, le=1000, description="At most this many jobs.")] = 50,
              principal: Principal = require("jobs:read")) -> JobList:
    """Jobs, newest first (a job whose worker died is marked failed first)."""
    return JobList(jobs=[JobOut.of(j) for j in service(request).list(statuses=status, limit=limit)])


@router.get("/{job_id}", response_model=JobOut, responses=NOT_FOUND, summary="A job's status")
def get_job(job: Annotated[Job, Depends(_existing)], principal: Principal = require("jobs:read")) -> JobOut:
    """The job as it stands now."""
    return JobOut.of(job)


@router.get("/{job_id}/events", response_class=EventSourceResponse, responses=NOT_FOUND,
            summary="A job's progress as server-sent events")
def job_events(request: Request, job: Annotated[Job, Depends(_existing)],
               principal: Principal = require("jobs:read")) -> Iterator[ServerSentEvent]:
    """A `text/event-stream`: an event `progress` with the job (as GET /jobs/{job_id} answers it) now and
    whenever it changes, then one event `end` with the job as it ended; the stream closes after it."""
    for seen, now in enumerate(service(request).follow(job.id, POLL_S), start=1):
        yield ServerSentEvent(data=JobOut.of(now), event="end" if now.finished else "progress", id=str(seen))


@router.post("/{job_id}/cancel", status_code=202, response_model=JobOut, responses=NOT_FOUND,
             summary="Cancel a job")
async def cancel_job(request: Request, job: Annotated[Job, Depends(_existing)],
                     principal: Principal = require("jobs:cancel")) -> JobOut:
    """A queued job is cancelled at once; a running one is stopped by its worker within a moment (its run
    is marked aborted, what was measured kept: follow the job to see it end `cancelled`). A finished job
    stays as it ended."""
    return JobOut.of(await run_in_threadpool(service(request).cancel, job.id))
