"""`infersight sweep`: run a sweep file's matrix, one isolated process per cell, resumable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from infersight.cli._common import emit_json, json_option, out, with_store
from infersight.cli._run_options import progress_bar
from runner.services import SweepRecord, SweepRequest, sweep_matrix
from runner.store import Store
from runner.sweep import Cell, CellOutcome, SweepPlan, SweepReporter, describe, plan_sweep
from runner.sweep.expand import cell_label

__all__ = ["COMMANDS"]

_MARKS = {"complete": "[green]done[/]", "failed": "[bold red]FAILED[/]", "skipped": "[yellow]skipped[/]"}


class _Display(SweepReporter):
    """A rich progress display on stderr: the sweep's bar, the running cell, one line per finished cell."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.total, self.current = progress, None, None

    def start(self, plan: SweepPlan, sweep_id: int, resumed: bool) -> None:
        self.progress.start()  # only now: a sweep file refused before this prints its error alone
        verb = "resuming" if resumed else "starting"
        self.progress.console.print(f"{verb} sweep {plan.sweep.name!r} (id {sweep_id}): {len(plan.cells)} cells")
        self.total = self.progress.add_task(f"sweep {plan.sweep.name}", total=len(plan.cells))
        self.cells = len(plan.cells)

    def cell_started(self, cell: Cell) -> None:
        self.current = self.progress.add_task(f"  cell {cell.position + 1}/{self.cells}: {cell.label}", total=None)

    def cell_finished(self, cell: Cell, outcome: CellOutcome) -> None:
        if self.current is not None:
            self.progress.remove_task(self.current)
            self.current = None
        self.progress.advance(self.total)
        mark = _MARKS[outcome.status] if outcome.ran or outcome.status != "complete" else "[dim]done before[/]"
        run = f" run {outcome.run_id}" if outcome.run_id else ""
        reason = f": {outcome.reason}" if outcome.reason else ""
        self.progress.console.print(f"{cell.position + 1:>4} {mark}{run}  {cell.label}{reason}",
                                    markup=True, highlight=False)


@click.command("sweep")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--new", is_flag=True, help="Start a new sweep of this name instead of resuming the last one.")
@click.option("--plan", "plan_only", is_flag=True, help="Validate and list the cells (with skip reasons); run nothing.")
@json_option
@with_store
def sweep_cmd(file: Path, new: bool, plan_only: bool, as_json: bool, store: Store) -> None:
    """Run the matrix of a sweep FILE (YAML): every cell in its own process, with a time limit.

    Running the same file again resumes the sweep of that name: cells with a complete run are
    not measured again. A cell that crashes, fails or hangs is recorded with the reason and the
    sweep goes on; cells this machine cannot run (a backend, provider or CPU it lacks) are
    skipped with the reason. Exit code 1 if any cell failed.

    \b
    Example:
        infersight sweep tasks/digits/sweep-demo.yaml --plan
        infersight sweep tasks/digits/sweep-demo.yaml
        infersight sweep tasks/digits/sweep-demo.yaml --json --db results.db
    """
    if plan_only:
        _print_plan(plan_sweep(file), as_json)
        return
    request = SweepRequest.parse(file=file, new=new)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with progress_bar(*columns) as progress:
        sweep = sweep_matrix(request, store, _Display(progress))
    if as_json:
        emit_json(sweep.to_dict())
    else:
        _print_summary(sweep, store.url)
    if sweep.status == "failed":
        raise click.exceptions.Exit(1)


def _print_plan(plan: SweepPlan, as_json: bool) -> None:
    data = describe(plan)
    if as_json:
        emit_json(data)
        return
    skipped = sum(1 for c in plan.cells if c.skip_reason)
    out.print(f"sweep {plan.sweep.name!r}: {len(plan.cells)} cells, {skipped} to be skipped on this machine")
    for cell in plan.cells:
        note = f"  [yellow]skipped: {cell.skip_reason}[/]" if cell.skip_reason else ""
        out.print(f"{cell.position + 1:>4} {cell.key[:12]}  {cell.label}{note}")


def _print_summary(sweep: SweepRecord, url: str) -> None:
    counts = Counter(c.status for c in sweep.cells)
    table = Table("cell", "what", "status", "run", "result", "headline", box=box.SIMPLE_HEAD, pad_edge=False)
    for c in sweep.cells:
        headline = ("-" if c.headline_value is None
                    else f"{c.headline_metric} {c.headline_value:,.4g} {c.headline_units}")
        table.add_row(str(c.position + 1), cell_label(c.request), c.status, str(c.run_id or "-"),
                      c.validity or "-", headline)
    out.print(table)
    for c in sweep.cells:
        if c.status in ("failed", "skipped"):
            out.print(f"  cell {c.position + 1} {c.status}: {c.reason}")
    summary = ", ".join(f"{counts[s]} {s}" for s in ("complete", "failed", "skipped") if counts[s])
    out.print(f"sweep {sweep.name!r} (id {sweep.id}) {sweep.status}: {summary}; stored in {url}")


COMMANDS = [sweep_cmd]
