"""One sweep cell in its own process: `python -m runner.sweep.cell` (internal: the sweep starts it).

Reads one JSON object on stdin: {"db": URL, "sweep_id": N, "cell_key": KEY, "attempt": N,
"request": {RunRequest fields}, "parent_pid": N}; measures the run into the store, linking it to its cell as
soon as the run is created (so a crash later still leaves the link), and prints one JSON line
on stdout: {"run_id": N}, or {"error": MESSAGE} with exit code 2 for bad input. SIGTERM (the
sweep's time limit, or the sweep process dying) marks the run aborted.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from typing import Any

from runner.errors import InfersightError
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store
from runner.store.sweeps import SweepLog

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1


class _CellStore(Store):
    """A store whose new runs are linked to one sweep cell the moment they are created."""

    def __init__(self, url: str, sweep_id: int, cell_key: str, attempt: int) -> None:
        super().__init__(url)
        self._link = (sweep_id, cell_key, attempt)

    def create_run(self, **fields: Any) -> int:
        run_id = super().create_run(**fields)
        SweepLog(self).link_run(run_id, *self._link)
        return run_id


def main() -> None:
    """Run the cell described on stdin; print its run id (or the error) as JSON."""
    job = json.loads(sys.stdin.read())
    _die_with_parent(job.get("parent_pid"))
    try:
        prep = prepare_run(RunRequest.parse(**job["request"]))
        with _CellStore(job["db"], job["sweep_id"], job["cell_key"], job["attempt"]) as store:
            run_id = execute_run(prep, store)
    except InfersightError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print(json.dumps({"error": "stopped (SIGTERM or Ctrl-C); the run is marked aborted"}), flush=True)
        sys.exit(130)
    print(json.dumps({"run_id": run_id}), flush=True)


def _die_with_parent(parent_pid: int | None) -> None:
    """Receive SIGTERM when the sweep's process dies (Linux prctl PR_SET_PDEATHSIG); exit if it already has."""
    if sys.platform != "linux" or parent_pid is None:
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the sweep died before the request above took effect
        sys.exit(143)


if __name__ == "__main__":
    main()
