"""Benchmark: start-up cost of a sweep cell in its own process vs the same cell run in-process.

Start-up is the time from the start of a cell (for an isolated cell: just before its process is
spawned) to the scheduled time of its first timed query, read from the run's performance log
(both clocks are CLOCK_MONOTONIC, comparable across processes on Linux). The cells are digits
on the null backend (--backend to choose another) under single_stream with no warm-up, so
start-up is what the cell costs before it measures anything: interpreter start and imports
(isolated only), loading the task's data and model card, opening the store, writing the cards.
The isolation cost is the difference; the issue asks for under 1 s per cell.
Run: `.venv/bin/python benchmarks/bench_sweep_isolation.py` (after `make models`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store
from runner.sweep import SweepReporter, plan_sweep, run_sweep

SCENARIO = "{min_duration_ms: [%s], warmup_duration_ms: 0, min_query_count: 64}"


class _Starts(SweepReporter):
    """Records when each cell's process is about to be spawned."""

    def __init__(self) -> None:
        self.started: dict[str, int] = {}

    def cell_started(self, cell) -> None:
        self.started[cell.key] = time.perf_counter_ns()


def first_query_ns(store: Store, run_id: int) -> int:
    return int(store.read_perf_samples(run_id)["scheduled_ns"].min())


def isolated(folder: Path, cells: int, backend: str) -> list[float]:
    """Start-up seconds of each cell of a real sweep (one process per cell)."""
    path = folder / "sweep.yaml"
    durations = ", ".join(str(100 + i) for i in range(cells))
    path.write_text(f"name: isolation\ntasks: [digits]\nbackends: [{{name: '{backend}'}}]\nquick: true\n"
                    f"scenarios:\n  - name: single_stream\n    settings: {SCENARIO % durations}\n")
    starts = _Starts()
    with Store(str(folder / "isolated.db")) as store:
        sweep = run_sweep(plan_sweep(path), store, starts)
        return [(first_query_ns(store, c.run_id) - starts.started[c.cell_key]) / 1e9 for c in sweep.cells]


def in_process(folder: Path, cells: int, backend: str) -> list[float]:
    """Start-up seconds of the same cells run one after another in this process."""
    out = []
    with Store(str(folder / "inprocess.db")) as store:
        for i in range(cells):
            settings = {"min_duration_ms": 100 + i, "warmup_duration_ms": 0, "min_query_count": 64}
            start = time.perf_counter_ns()
            run_id = execute_run(prepare_run(RunRequest("digits", backend, "single_stream", "fp32", {}, settings,
                                                        quick=True)), store)
            out.append((first_query_ns(store, run_id) - start) / 1e9)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--backend", default="null", help="backend of the cells (null: start-up alone)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp())
    inproc = in_process(folder, args.cells + 1, args.backend)[1:]  # the first one also pays this process's imports
    iso = isolated(folder, args.cells, args.backend)
    a, b = float(np.median(iso)), float(np.median(inproc))
    print(f"sweep cell start-up (spawn or call -> first timed query), digits / {args.backend} / single_stream, "
          f"median of {args.cells} cells")
    print(f"isolated process {a:.3f} s (max {max(iso):.3f})   in-process {b:.3f} s (max {max(inproc):.3f})   "
          f"isolation cost {a - b:.3f} s per cell")


if __name__ == "__main__":
    main()
