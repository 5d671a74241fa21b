"""Jobs in the store: runs, sweeps and peak searches queued for a machine's worker, with their progress.

A job is queued by the job service (runner/jobs), claimed by one worker process on its host
(`claim_next` is atomic: two workers never claim one job), updated as it progresses and
finished once. Every write is its own transaction, so a page reload or a restart of the app
reads the job as it stands; a job whose worker died stays 'running' until `fail_dead` (called
when a job service starts) marks it failed. Methods block on the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, select, update

from runner.errors import JobNotFound, StoreError
from runner.store._checks import id_in_range, process_alive
from runner.store._engine import display_url
from runner.store.schema import Damaged, jobs
from runner.store.store import Store

__all__ = ["Job", "JobLog", "JOB_KINDS", "JOB_STATUSES", "ACTIVE", "FINISHED"]

JOB_KINDS = ("run", "sweep", "peak")
JOB_STATUSES = ("queued", "running", "complete", "failed", "cancelled")
ACTIVE = JOB_STATUSES[:2]
FINISHED = JOB_STATUSES[2:]


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Job:
    """One job as stored: what was asked, where it stands, the runs it made and what it produced."""

    id: int
    kind: str
    request: dict[str, Any]
    status: str
    progress: float
    phase: str | None
    run_ids: tuple[int, ...]
    result: dict[str, Any] | None
    error: str | None
    submitted_by: str
    hostname: str
    pid: int | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """Whether the job has ended (complete, failed or cancelled)."""
        return self.status in FINISHED

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (timestamps as ISO 8601 strings, run ids as a list)."""
        out = asdict(self)
        out["run_ids"] = list(self.run_ids)
        for key in ("created_at", "started_at", "finished_at"):
            out[key] = None if out[key] is None else out[key].isoformat()
        return out


class JobLog:
    """Reads and writes the jobs table of a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def submit(self, kind: str, request: Mapping[str, Any], *, submitted_by: str,
               hostname: str | None = None) -> Job:
        """Queue a job for `hostname` (default: this machine); return it."""
        if kind not in JOB_KINDS:
            raise ValueError(f"job kind must be one of {', '.join(JOB_KINDS)}, not {kind!r}")
        values = dict(kind=kind, request=dict(request), status="queued", progress=0.0, run_ids=[],
                      submitted_by=submitted_by, hostname=hostname or self.store.hostname,
                      cancel_requested=False, created_at=_now())
        with self.store.transaction() as conn:
            job_id = conn.execute(jobs.insert().values(**values)).inserted_primary_key[0]
        return self.get(job_id)

    def claim_next(self, pid: int) -> Job | None:
        """Mark the oldest queued job of this host running under worker `pid`; None when none is queued."""
        with self.store.transaction() as conn:
            query = (select(jobs.c.id).where(jobs.c.hostname == self.store.hostname,
                                             jobs.c.status == "queued").order_by(jobs.c.id).limit(1))
            job_id = conn.execute(query).scalar()
            if job_id is None:
                return None
            claimed = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == "queued")
                                   .values(status="running", pid=pid, started_at=_now(), phase="starting"))
            if claimed.rowcount != 1:
                return None
        return self.get(job_id)

    def progress(self, job_id: int, fraction: float, phase: str) -> None:
        """Record how far a running job is (0..1) and what it is doing."""
        with self.store.transaction() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == "running")
                         .values(progress=min(max(float(fraction), 0.0), 1.0), phase=phase[:2000]))

    def add_run(self, job_id: int, run_id: int) -> None:
        """Add a run the job made to its run ids (as soon as the run is created)."""
        with self.store.transaction() as conn:
            known = list(conn.execute(select(jobs.c.run_ids).where(jobs.c.id == job_id)).scalar_one())
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(run_ids=[*known, int(run_id)]))

    def finish(self, job_id: int, status: str, *, error: str | None = None,
               result: Mapping[str, Any] | None = None) -> None:
        """Record how a running job ended; a job already finished keeps its first ending."""
        if status not in FINISHED:
            raise ValueError(f"a finished job's status must be one of {', '.join(FINISHED)}, not {status!r}")
        values: dict[str, Any] = dict(status=status, error=error, finished_at=_now())
        if status == "complete":
            values["progress"] = 1.0
        if result is not None:
            values["result"] = dict(result)
        with self.store.transaction() as conn:
            self._require(conn, job_id)
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE)).values(**values))

    def cancel(self, job_id: int) -> Job:
        """Cancel a queued job now; flag a running one (its worker then stops it); return the job now."""
        with self.store.transaction() as conn:
            self._require(conn, job_id)
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == "queued")
                         .values(status="cancelled", cancel_requested=True, finished_at=_now(),
                                 error="cancelled before it started"))
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == "running")
                         .values(cancel_requested=True))
        return self.get(job_id)

    def fail_dead(self) -> list[int]:
        """Mark failed the running jobs of this host whose worker process is gone; return their ids."""
        with self.store.transaction(write=False) as conn:
            rows = conn.execute(select(jobs.c.id, jobs.c.pid, jobs.c.started_at).where(
                jobs.c.hostname == self.store.hostname, jobs.c.status == "running")).all()
        dead = [row for row in rows if not process_alive(row.pid, row.started_at or _now())]
        for row in dead:
            self.finish(row.id, "failed", error=f"worker process {row.pid} on {self.store.hostname} ended "
                                                f"before the job finished")
        return [row.id for row in dead]

    def queued_here(self) -> int:
        """How many jobs wait for a worker on this host."""
        with self.store.transaction(write=False) as conn:
            return len(conn.execute(select(jobs.c.id).where(jobs.c.hostname == self.store.hostname,
                                                            jobs.c.status == "queued")).all())

    def get(self, job_id: int) -> Job:
        """One job by id; JobNotFound if there is none."""
        with self.store.transaction(write=False) as conn:
            row = self._require(conn, job_id)
        return self._job(row)

    def list(self, *, statuses: Sequence[str] | None = None, limit: int | None = 50) -> list[Job]:
        """Jobs, newest first, optionally only those with one of `statuses`."""
        query = select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        if statuses is not None:
            query = query.where(jobs.c.status.in_(list(statuses)))
        with self.store.transaction(write=False) as conn:
            return [self._job(row) for row in conn.execute(query).mappings()]

    def _require(self, conn: Connection, job_id: int) -> Mapping[str, Any]:
        row = None
        if isinstance(job_id, int) and not isinstance(job_id, bool) and id_in_range(job_id):
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            raise JobNotFound(f"no job {job_id!r} in {display_url(self.store.url)}")
        return row

    def _job(self, row: Mapping[str, Any]) -> Job:
        values, where = dict(row), display_url(self.store.url)
        for column in ("request", "run_ids", "result"):
            if isinstance(values[column], Damaged):
                raise StoreError(f"{where}: job {values['id']} is damaged: jobs.{column} holds text that "
                                 f"is not JSON ({values[column].text[:40]!r})")
        if values["status"] not in JOB_STATUSES or values["kind"] not in JOB_KINDS:
            raise StoreError(f"{where}: job {values['id']} is damaged: kind {values['kind']!r}, "
                             f"status {values['status']!r}")
        values["run_ids"] = tuple(values["run_ids"])
        values["cancel_requested"] = bool(values["cancel_requested"])
        return Job(**values)
