"""Jobs: runs, sweeps and peak searches queued on this machine, one measuring job at a time, each in a worker
process that can be cancelled; their state lives in the store (runner.store.jobs), so it survives a restart.

`JobService(store).submit(request, submitted_by)` checks and queues a job and starts its worker;
`get`, `list`, `follow` and `cancel` read and steer it. The app's Run page and the REST API's /jobs use it.
"""

from runner.jobs.requests import JobRequest, PeakJob, RunJob, SweepJob, parse_request
from runner.jobs.service import JobService, default_home
from runner.store.jobs import ACTIVE, FINISHED, JOB_KINDS, JOB_STATUSES, Job

__all__ = ["JobService", "default_home", "Job", "JobRequest", "RunJob", "PeakJob", "SweepJob",
           "parse_request",
           "JOB_KINDS", "JOB_STATUSES", "ACTIVE", "FINISHED"]
