"""The job service: queue a run, a sweep or a peak search on this machine, follow it, cancel it.

Every front door that starts measurements for someone else (the app's Run page, the REST API's
/jobs) goes through `JobService`. A job is a row of the store's jobs table (runner.store.jobs), so
it survives a page reload and a restart of the app. Each submitted job starts a worker process
(runner.jobs.worker) in its own session, which waits for the machine's measuring lock and then runs
the queued jobs oldest first: one measuring job runs per machine at a time, so runs never disturb
each other. A service starting
up marks failed the jobs whose worker died (never leaving them 'running') and starts workers for
jobs still queued.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from runner.errors import StoreError
from runner.jobs.execute import check
from runner.jobs.requests import RunJob, SweepJob, parse_request
from runner.store.jobs import Job, JobLog
from runner.store.store import Store

__all__ = ["JobService", "default_home"]


def default_home() -> Path:
    """The folder of this machine's measuring lock and worker log: $INFERSIGHT_JOBS_DIR, else a per-user
    folder in the temporary directory."""
    named = os.environ.get("INFERSIGHT_JOBS_DIR")
    return Path(named) if named else Path(tempfile.gettempdir()) / f"infersight-jobs-{os.getuid()}"


class JobService:
    """Jobs of one store, run on this machine. Methods block on the database; `submit` starts a process."""

    def __init__(self, store: Store, home: Path | None = None, python: str = sys.executable) -> None:
        self.store, self.log = store, JobLog(store)
        self.home, self.python = Path(home) if home is not None else default_home(), python
        self.recover()

    def recover(self) -> list[int]:
        """Mark failed the running jobs of this host whose worker died; start a worker for every queued job.

        Returns the ids of the jobs marked failed. A worker with nothing left to claim exits at once.
        """
        if self.store.read_only:
            return []
        failed = self.log.fail_dead()
        for _ in range(self.log.queued_here()):
            self._start_worker()
        return failed

    def submit(self, request: Mapping[str, Any] | RunJob | SweepJob, submitted_by: str) -> Job:
        """Check and queue a job, start its worker; return the queued job.

        Bad input raises InfersightError (SettingsError, CardError, PluginNotFound, ...) and queues nothing.
        """
        checked = parse_request(request)
        check(checked)
        job = self.log.submit(checked.kind, checked.model_dump(mode="json"), submitted_by=submitted_by)
        self._start_worker()
        return job

    def get(self, job_id: int) -> Job:
        """One job as it stands now (JobNotFound for an unknown id)."""
        return self.log.get(job_id)

    def list(self, *, statuses: Sequence[str] | None = None, limit: int | None = 50) -> list[Job]:
        """Jobs, newest first; running jobs whose worker died are marked failed first."""
        if not self.store.read_only:
            self.log.fail_dead()
        return self.log.list(statuses=statuses, limit=limit)

    def cancel(self, job_id: int) -> Job:
        """Cancel a job: a queued one at once; a running one is stopped by its worker within a moment (its run
        is marked aborted, what was measured kept). A finished job stays as it ended. Returns the job now."""
        return self.log.cancel(job_id)

    def follow(self, job_id: int, poll_s: float = 0.25, timeout_s: float | None = None) -> Iterator[Job]:
        """Yield the job now and again whenever it changes, until it has finished (or timeout_s passes)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        last = None
        while True:
            job = self.log.get(job_id)
            if job != last:
                yield job
                last = job
            if job.finished or (deadline is not None and time.monotonic() > deadline):
                return
            time.sleep(poll_s)

    def wait(self, job_id: int, timeout_s: float, poll_s: float = 0.1) -> Job:
        """The job once it has finished; StoreError if it has not within timeout_s."""
        job = None
        for job in self.follow(job_id, poll_s, timeout_s):
            pass
        if job is None or not job.finished:
            status = job.status if job else "?"
            raise StoreError(f"job {job_id} did not finish within {timeout_s:g} s (it is {status})")
        return job

    def _start_worker(self) -> None:
        """Start a worker process in its own session (it outlives the app), its output appended to the log."""
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [self.python, "-m", "runner.jobs.worker", "--db", self.store.url, "--home", str(self.home)]
        with open(self.home / "workers.log", "ab") as log:
            subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
