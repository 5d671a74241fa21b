"""The one place where a job calls the runner's workflows (runner.services):
`check` before a job is queued (bad input fails the submission, nothing is stored), `execute` in the
worker process. A job that should call another workflow function is re-pointed here and only here.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from runner.errors import InfersightError
from runner.jobs.requests import PeakJob, RunJob, SweepJob
from runner.peak import Probe, SearchReporter
from runner.run import prepare_run
from runner.services import PeakSearchRequest, SweepRequest, measure_run, search_peak, sweep_matrix
from runner.sweep import Cell, CellOutcome, SweepPlan, SweepReporter, plan_sweep

__all__ = ["check", "execute", "partial_result", "JobReporter", "RUN_PHASES"]

RUN_PHASES = 3  # a run reports three phases: loading, warm-up and timed run, accuracy pass
_WRITE_EVERY_S = 0.5  # progress is written at most this often (a new phase is written at once)


class JobReporter(SearchReporter, SweepReporter):
    """Turns a workflow's progress into the job's (fraction 0..1, phase text) and collects the runs it made.

    `write(fraction, phase)` records progress; `run_made(run_id)` a new run; `result` what the job produced.
    """

    def __init__(self, write: Callable[[float, str], None], run_made: Callable[[int], None]) -> None:
        self._write, self.run_made = write, run_made
        self.result: dict[str, Any] = {}
        self._phases, self._phase, self._written = 0, "", 0.0
        self._prefix, self._span = "", (0.0, 1.0)
        self._cells, self._done = 1, 0  # a sweep's cells, and how many have ended

    def phase(self, text: str) -> None:
        self._phases += 1
        self._phase = text
        self._emit(0.0, force=True)

    def update(self, fraction: float, text: str) -> None:
        self._emit(fraction, force=False)

    def _emit(self, fraction: float, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._written < _WRITE_EVERY_S:
            return
        self._written = now
        within = (min(self._phases, RUN_PHASES) - 1 + min(max(fraction, 0.0), 1.0)) / RUN_PHASES
        lo, hi = self._span
        self._write(lo + (hi - lo) * max(within, 0.0), f"{self._prefix}{self._phase}")

    def searching(self) -> None:
        """A peak search starts: phases are its first probe's."""
        self._prefix = "probe 1: "

    def probe_done(self, probe: Probe, result: dict[str, Any]) -> None:
        self._phases, self._prefix = 0, f"probe {len(result['probes']) + 1}: "
        verdict = "VALID" if probe.valid else "INVALID"
        self._phase = f"probe {len(result['probes'])} at {probe.target_qps:,.6g} QPS was {verdict}"
        self._emit(0.0, force=True)

    def start(self, plan: SweepPlan, sweep_id: int, resumed: bool) -> None:
        self.result["sweep_id"] = sweep_id
        self._cells, self._done = len(plan.cells), 0

    def cell_started(self, cell: Cell) -> None:
        self._phases, self._phase = 0, ""
        self._prefix = f"cell {self._done + 1} of {self._cells} ({cell.label}): "
        self._span = (self._done / self._cells, (self._done + 1) / self._cells)
        self._write(self._span[0], f"{self._prefix}running")

    def cell_finished(self, cell: Cell, outcome: CellOutcome) -> None:
        self._done += 1
        if outcome.run_id is not None and outcome.ran:
            self.run_made(outcome.run_id)
        self._write(self._done / self._cells, f"{self._done} of {self._cells} cells done")


class _JobStore:
    """The store, telling the job of every run created through it the moment it exists."""

    def __init__(self, store: Any, run_made: Callable[[int], None]) -> None:
        self._store, self._run_made = store, run_made

    def create_run(self, **fields: Any) -> int:
        run_id = self._store.create_run(**fields)
        self._run_made(run_id)
        return run_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def check(request: RunJob | SweepJob) -> None:
    """Check all that can be checked before the job is queued (InfersightError on bad input; nothing runs)."""
    if isinstance(request, SweepJob):
        with _sweep_file(request) as path:
            _plan(path)
    else:
        prepare_run(request.run_request())


def execute(request: RunJob | SweepJob, store: Any, reporter: JobReporter) -> dict[str, Any]:
    """Run the job's workflow into `store` on this thread; return what it produced (ids and headline facts).

    Ctrl-C or SIGTERM (a cancel) raises KeyboardInterrupt after the workflow has marked its run, search or
    sweep aborted, with what was measured kept.
    """
    linked = _JobStore(store, reporter.run_made)
    if isinstance(request, SweepJob):
        with _sweep_file(request) as path:
            _plan(path)  # errors name the job request's sweep, not the temporary file
            sweep = sweep_matrix(SweepRequest(file=path), store, reporter)
        return {"sweep_id": sweep.id, "sweep_status": sweep.status}
    if isinstance(request, PeakJob):
        reporter.searching()
        search = search_peak(PeakSearchRequest(run=request.run_request(), search=request.search), linked, reporter)
        return {"search_id": search.id, "peak_qps": (search.result or {}).get("peak_qps")}
    return {"run_id": measure_run(request.run_request(), linked, reporter).id}


def partial_result(request: RunJob | SweepJob, store: Any, reporter: JobReporter,
                   run_ids: tuple[int, ...]) -> dict[str, Any]:
    """What a job stopped before its end had produced: its run, search or sweep."""
    if isinstance(request, PeakJob) and run_ids:
        return {"search_id": store.get_run(run_ids[0]).search_id}
    if isinstance(request, RunJob) and not isinstance(request, PeakJob) and run_ids:
        return {"run_id": run_ids[-1]}
    return dict(reporter.result)


@contextmanager
def _sweep_file(request: SweepJob) -> Iterator[Path]:
    """The sweep of a job written as a sweep file in a temporary folder (plan_sweep reads files)."""
    with tempfile.TemporaryDirectory(prefix="infersight-job-sweep-") as folder:
        path = Path(folder) / f"{request.sweep.name}.yaml"
        path.write_text(yaml.safe_dump(request.sweep.to_dict(), sort_keys=False), encoding="utf-8")
        yield path


def _plan(path: Path) -> SweepPlan:
    """plan_sweep, its errors naming the job request's `sweep` instead of the temporary file."""
    try:
        return plan_sweep(path)
    except InfersightError as exc:
        raise type(exc)(re.sub(re.escape(str(path)) + r"(:\d+)?", "job request: sweep", str(exc))) from None
