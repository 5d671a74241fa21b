"""The runner's workflows, one function each: measure a run, its replicas, a peak search, a sweep.

Every function takes a validated request (runner.services.models), a Store and optionally a reporter
for progress, and returns frozen records read back from the store. Bad input raises an InfersightError
subclass (SettingsError, CardError, ...) before anything is written. They block on the calling thread
until the measurement ends; Ctrl-C or SIGTERM marks what was running aborted and propagates.
"""

from __future__ import annotations

from dataclasses import replace

from runner.peak import SearchReporter, run_peak_search
from runner.run import Reporter, RunRequest, execute_run, prepare_run
from runner.services.models import (PeakSearchRecord, PeakSearchRequest, ReplicasRecord, ReplicasRequest,
                                    RunRecord, SweepRecord, SweepRequest)
from runner.store import Store
from runner.sweep import SweepReporter, plan_sweep, run_sweep

__all__ = ["measure_run", "measure_replicas", "search_peak", "sweep_matrix", "ReplicaReporter"]


class ReplicaReporter(Reporter):
    """Progress of `measure_replicas`: each replica's phases (Reporter), and each replica as it ends."""

    def replica_done(self, index: int, total: int, run: RunRecord) -> None:
        """Replica `index` (1-based) of `total` has been measured and stored as `run`."""


def measure_run(request: RunRequest, store: Store, reporter: Reporter | None = None) -> RunRecord:
    """Measure one run (`infersight run`): resolve and check the request, measure, validate and store it
    with its four cards and two logs; return the stored run.

    Raises InfersightError on bad input before anything is written; a run that fails once started is
    stored as failed (and the error propagates)."""
    return store.get_run(execute_run(prepare_run(request), store, reporter))


def measure_replicas(request: ReplicasRequest, store: Store,
                     reporter: ReplicaReporter | None = None) -> ReplicasRecord:
    """Measure `request.replicas` runs of one configuration, one after another, each labelled
    'repro i/n' (`infersight repro TASK`); return them in order. The request is checked before the first
    replica is measured, so bad input writes nothing."""
    rep = reporter or ReplicaReporter()
    n = request.replicas
    first = prepare_run(replace(request.run, label=f"repro 1/{n}"))
    runs = []
    for i in range(n):
        prep = first if i == 0 else prepare_run(replace(request.run, label=f"repro {i + 1}/{n}"))
        run = store.get_run(execute_run(prep, store, rep))
        rep.replica_done(i + 1, n, run)
        runs.append(run)
    return ReplicasRecord(runs=tuple(runs))


def search_peak(request: PeakSearchRequest, store: Store, reporter: SearchReporter | None = None) -> PeakSearchRecord:
    """Search for the highest target QPS a server configuration stays VALID at (`infersight peak`):
    bracket, bisect and repeat near the knee, every probe a stored run; return the stored search with
    its P(VALID) table, peak and probes."""
    return run_peak_search(request.run, store, request.search, reporter)


def sweep_matrix(request: SweepRequest, store: Store, reporter: SweepReporter | None = None) -> SweepRecord:
    """Run (or resume) the matrix of a sweep file (`infersight sweep FILE`): each cell without a complete
    run in its own process with a time limit, failures and skips recorded with the reason; return the
    stored sweep with its cells. The file is validated whole before any cell runs."""
    return run_sweep(plan_sweep(request.file), store, reporter, new=request.new)
