"""A job worker: `python -m runner.jobs.worker --db URL --home DIR` (internal: the job service starts them).

The worker waits for the machine's measuring lock (an flock on DIR/measure.lock, held for the whole job and
released by the kernel if the worker dies), so one measuring job runs on this machine at a time, whichever
store, app or server queued it. Holding it, the worker claims the oldest queued job of this host, runs it,
records how it ended, and goes on with the next queued job until none is left (a worker started for a job
that another worker ran finds nothing and exits). A thread watches the running job's row: once a cancel
is asked for, the worker sends itself SIGTERM, which stops the workflow the way Ctrl-C does (its run is
marked aborted with what was measured kept) and the job ends cancelled. Output (tracebacks of unexpected
errors) goes to DIR/workers.log.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["main", "machine_lock", "LOCK_FILE", "WATCH_S", "RESEND_S"]

LOCK_FILE = "measure.lock"
WATCH_S = 0.25  # how often the worker looks for a cancel of its job
RESEND_S = 10.0  # a cancel not acted on within this long is signalled again


@contextmanager
def machine_lock(home: Path) -> Iterator[None]:
    """Hold the machine's measuring lock (blocking until it is free)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> None:
    """Wait for the lock, run the queued jobs of this host (oldest first) until none is left, exit."""
    parser = argparse.ArgumentParser(prog="python -m runner.jobs.worker")
    parser.add_argument("--db", required=True, help="Store URL.")
    parser.add_argument("--home", required=True, help="Folder of the machine's measuring lock.")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        with machine_lock(Path(args.home)):
            _run_queue(args.db)
    except KeyboardInterrupt:
        sys.exit(143)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run_queue(url: str) -> None:
    from runner.store import Store
    from runner.store.jobs import JobLog

    with Store(url) as store:
        log = JobLog(store)
        while (job := log.claim_next(os.getpid())) is not None:
            stop = threading.Event()
            watcher = threading.Thread(target=_watch, args=(log, job.id, stop), daemon=True)
            watcher.start()
            try:
                _run(log, job)
            finally:
                stop.set()
                watcher.join()  # it signals no more: the next job is safe from this one's cancel
            signal.signal(signal.SIGTERM, _sigterm)


def _watch(log: Any, job_id: int, stop: threading.Event) -> None:
    """Send this process SIGTERM once the job's cancel is asked for (from any process or machine), and again
    every RESEND_S while the job goes on: a KeyboardInterrupt raised while the main thread runs a finalizer
    (`__del__`) is lost, and the job must stop all the same. Once the job stops, SIGTERM is ignored."""
    sent = None
    while not stop.wait(WATCH_S):
        try:
            cancelled = log.get(job_id).cancel_requested
        except Exception:  # noqa: BLE001 - a busy or briefly unreadable store: look again
            continue
        if cancelled and not stop.is_set() and (sent is None or time.monotonic() - sent > RESEND_S):
            os.kill(os.getpid(), signal.SIGTERM)
            sent = time.monotonic()


def _run(log: Any, job: Any) -> None:
    """Run a claimed job and record how it ended."""
    from runner.errors import InfersightError
    from runner.jobs.execute import JobReporter, execute, partial_result
    from runner.jobs.requests import parse_request

    reporter = JobReporter(lambda fraction, phase: log.progress(job.id, fraction, phase),
                           lambda run_id: log.add_run(job.id, run_id))
    request = None
    try:
        request = parse_request(job.request)
        result = execute(request, log.store, reporter)
        status, error = "complete", None
    except KeyboardInterrupt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        status, error = _stopped(log.get(job.id).cancel_requested)
    except InfersightError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - recorded in the job (and its traceback in workers.log)
        traceback.print_exc()
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the ending is being recorded: a late cancel is too late
    if status != "complete":
        run_ids = log.get(job.id).run_ids
        result = {} if request is None else partial_result(request, log.store, reporter, run_ids)
    log.finish(job.id, status, error=error, result=result)


def _stopped(cancelled: bool) -> tuple[str, str]:
    if cancelled:
        return "cancelled", "cancelled while running; what was measured is kept (its run is marked aborted)"
    return "failed", "the worker was stopped (SIGTERM) before the job finished; its run is marked aborted"


if __name__ == "__main__":
    main()
