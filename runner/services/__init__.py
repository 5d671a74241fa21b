"""The runner's service layer: one function per workflow, each taking a validated frozen request and
returning frozen records. Every front door (the CLI, the app, the REST API) calls these and nothing below.

    measure_run(RunRequest, store, reporter)               -> RunRecord
    measure_replicas(ReplicasRequest, store, reporter)     -> ReplicasRecord
    search_peak(PeakSearchRequest, store, reporter)        -> PeakSearchRecord
    sweep_matrix(SweepRequest, store, reporter)            -> SweepRecord

`RunRequest.parse(**fields)` (and every request's `parse`, runner.requests) validates a request from plain data
(SettingsError naming each bad field and value);
`backend_options(backend, options)` turns the CLI's backend shortcuts (--threads, --provider, ...) into the
backend's own settings, as each backend declares them.
"""

from runner.backends.aliases import backend_options
from runner.services.models import (PeakSearchRecord, PeakSearchRequest, PeakSettings, ProbeRecord, ReplicasRecord,
                                    ReplicasRequest, RunRecord, RunRequest, SweepCellRecord, SweepRecord,
                                    SweepRequest)
from runner.services.workflows import ReplicaReporter, measure_replicas, measure_run, search_peak, sweep_matrix

__all__ = ["measure_run", "measure_replicas", "search_peak", "sweep_matrix", "backend_options", "ReplicaReporter",
           "RunRequest", "ReplicasRequest", "PeakSearchRequest", "PeakSettings", "SweepRequest", "RunRecord",
           "ReplicasRecord", "PeakSearchRecord", "ProbeRecord", "SweepRecord", "SweepCellRecord"]
