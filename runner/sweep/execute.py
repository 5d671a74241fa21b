"""Running a planned sweep: each cell in its own process with a time limit, resumable, every run linked.

A cell whose sweep already has a complete run for its key is not run again, so running the
same sweep file after an interruption (Ctrl-C, SIGKILL, a reboot) only measures what is
missing. A cell's process that crashes (even a segfault), fails or outlives the time limit
fails that cell with the reason recorded, and the sweep goes on with the next cell. Cells the
machine cannot run were planned as skipped and are recorded with their reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass

from runner.store import Store
from runner.store.records import SweepRecord
from runner.store.sweeps import SweepLog
from runner.sweep.expand import Cell, SweepPlan

__all__ = ["SweepReporter", "CellOutcome", "run_sweep", "cell_command"]

_GRACE_S = 5.0  # after SIGTERM, how long a cell may take to mark its run aborted before SIGKILL


@dataclass(frozen=True)
class CellOutcome:
    """How one cell ended: complete, failed or skipped; why; the run that counts; whether it ran now."""

    status: str
    reason: str | None = None
    run_id: int | None = None
    ran: bool = False


class SweepReporter:
    """Receives a sweep's progress (called on the sweep's thread); the CLI draws it, the default is silent."""

    def start(self, plan: SweepPlan, sweep_id: int, resumed: bool) -> None:
        """The sweep starts (or resumes) with these cells."""

    def cell_started(self, cell: Cell) -> None:
        """A cell's process is starting."""

    def cell_finished(self, cell: Cell, outcome: CellOutcome) -> None:
        """A cell ended (or was found done, or skipped)."""


def run_sweep(plan: SweepPlan, store: Store, reporter: SweepReporter | None = None, *, new: bool = False,
              python: str = sys.executable) -> SweepRecord:
    """Run every cell of the plan that has no complete run yet; return the sweep with its cells."""
    rep, log = reporter or SweepReporter(), SweepLog(store)
    sweep_id, resumed = log.open(name=plan.sweep.name, file_path=str(plan.path), file_hash=plan.file_hash,
                                 spec=plan.sweep.to_dict(), cell_count=len(plan.cells), new=new)
    log.add_cells(sweep_id, ((c.key, c.position, c.request) for c in plan.cells))
    rep.start(plan, sweep_id, resumed)
    outcomes: Counter[str] = Counter()
    cell = None
    try:
        for cell in plan.cells:
            outcome = _do_cell(log, sweep_id, cell, plan.sweep.time_limit_s, python, rep)
            outcomes[outcome.status] += 1
    except KeyboardInterrupt:
        if cell is not None:
            log.interrupt_cell(sweep_id, cell.key, "interrupted (Ctrl-C); run the sweep again to resume")
        log.finish(sweep_id, "aborted")
        raise
    log.finish(sweep_id, "failed" if outcomes["failed"] else "partial" if outcomes["skipped"] else "complete")
    return log.get(sweep_id)


def _do_cell(log: SweepLog, sweep_id: int, cell: Cell, limit_s: float, python: str,
             rep: SweepReporter) -> CellOutcome:
    done = log.complete_run(sweep_id, cell.key)
    if done is not None:
        outcome = CellOutcome("complete", None, done)
    elif cell.skip_reason:
        outcome = CellOutcome("skipped", cell.skip_reason)
    else:
        attempt = log.start_cell(sweep_id, cell.key)
        rep.cell_started(cell)
        outcome = _run_cell(log, sweep_id, cell, attempt, limit_s, python)
    log.finish_cell(sweep_id, cell.key, outcome.status, outcome.reason, outcome.run_id)
    rep.cell_finished(cell, outcome)
    return outcome


def cell_command(python: str = sys.executable) -> list[str]:
    """The command that runs one cell in its own process."""
    return [python, "-m", "runner.sweep.cell"]


def _run_cell(log: SweepLog, sweep_id: int, cell: Cell, attempt: int, limit_s: float, python: str) -> CellOutcome:
    job = {"db": log.store.url, "sweep_id": sweep_id, "cell_key": cell.key, "attempt": attempt,
           "request": cell.request, "parent_pid": os.getpid()}
    returncode, stdout, stderr, limit_note = _spawn(cell_command(python), json.dumps(job), limit_s)
    log.store.recover_aborted()  # a cell killed mid-run leaves its run 'running': mark it aborted now
    run = log.attempt_run(sweep_id, cell.key, attempt)
    run_id = run["id"] if run else None
    if returncode == 0 and run and run["status"] == "complete":
        return CellOutcome("complete", None, run_id, ran=True)
    reason = limit_note or _why(returncode, stdout, stderr)
    if run and run.get("error") and run["error"] not in reason:
        reason += f"; run {run_id} {run['status']}: {run['error']}"
    return CellOutcome("failed", reason, run_id, ran=True)


def _spawn(cmd: list[str], job: str, limit_s: float) -> tuple[int, str, str, str | None]:
    """Run a cell's process with a wall-clock limit: (returncode, stdout, stderr, time-limit note or None)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(job, timeout=limit_s)
        return proc.returncode, out, err, None
    except subprocess.TimeoutExpired:
        how = _stop(proc)
        out, err = proc.communicate()
        return proc.returncode, out, err, f"time limit of {limit_s:g} s exceeded: the cell's process {how}"
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen) -> str:
    """SIGTERM (the cell marks its run aborted), then SIGKILL if it has not ended within the grace period."""
    proc.terminate()
    try:
        proc.wait(timeout=_GRACE_S)
        return "was stopped with SIGTERM"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return f"did not stop within {_GRACE_S:g} s of SIGTERM and was killed (SIGKILL)"


def _why(returncode: int, stdout: str, stderr: str) -> str:
    """A one-line reason from a cell's exit: its JSON error, the signal that killed it, or its last words."""
    message = _json_error(stdout)
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        return f"the cell's process died of signal {name}" + (f": {_last_line(stderr)}" if _last_line(stderr) else "")
    if message:
        return message
    return f"the cell's process exited with code {returncode}: {_last_line(stderr) or 'no message'}"


def _json_error(stdout: str) -> str | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
    return None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith("Fatal Python error")]
    return (fatal or lines or [""])[-1][:500]
