"""Sweeps: a matrix of runs from a sweep file, each cell isolated in its own process, resumable.

`plan_sweep(path)` validates the file and expands it into keyed cells (nothing runs);
`run_sweep(plan, store)` runs the cells that have no complete run yet, one process each.
"""

from runner.sweep.execute import CellOutcome, SweepReporter, run_sweep
from runner.sweep.expand import Cell, SweepPlan, describe, plan_sweep
from runner.sweep.model import SweepFile, load_sweep

__all__ = ["SweepFile", "load_sweep", "Cell", "SweepPlan", "plan_sweep", "describe", "SweepReporter",
           "CellOutcome", "run_sweep"]
