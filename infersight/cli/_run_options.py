"""The options that describe one run, shared by `run`, `peak` and `repro`, and the RunRequest they make.

One decorator adds them (sqlite-utils' `insert_upsert_options`); `run_request` turns what was given into
a runner.services RunRequest. The backend shortcuts (--threads, --provider, --batch-size) mean each
backend's own setting (runner.backends.aliases); --backend-set sets any backend setting by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn

from infersight.cli._common import err
from runner.cards.system import load_system_extra
from runner.loading import load_yaml_text
from runner.run import Reporter
from runner.services import RunRequest, backend_options

__all__ = ["run_options", "run_request", "parse_sets", "BarReporter", "progress_bar"]

SHORTCUTS = ("threads", "batch_size", "provider")


def parse_sets(values: tuple[str, ...], option: str = "--set") -> dict[str, Any]:
    """KEY=VALUE pairs (values read as YAML: 2, true, [a, b]) as a dict."""
    settings = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=option)
        settings[key.strip()] = load_yaml_text(raw, option, (key.strip(),))[0]
    return settings


def run_options(*, scenario: bool = True, extras: bool = True) -> Callable:
    """Add the run options to a command: backend, scenario (unless the command fixes it), model variant, the
    backend shortcuts, settings, CPUs and --quick; with `extras`, also --loadgen, --label and --system-extra."""
    options = [
        click.option("--backend", default="onnxruntime", show_default=True,
                     help="Backend plugin (see `infersight plugins`)."),
        *([click.option("--scenario", default="offline", show_default=True,
                        help="Scenario plugin: single_stream, multi_stream, server, offline or interactive.")]
          if scenario else []),
        click.option("--model-variant", default="fp32", show_default=True,
                     help="Model variant of the task (fp32, int8)."),
        click.option("--threads", type=int, default=None,
                     help="The backend's threads: onnxruntime intra_op_threads, openvino inference_num_threads."),
        click.option("--batch-size", type=int, default=None, help="Samples per inference call (offline batching)."),
        click.option("--provider", multiple=True,
                     help="onnxruntime: execution provider, repeatable, in priority order (cpu, cuda, ...)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Scenario setting, e.g. --set min_duration_ms=60000 (see `infersight show` for the names)."),
        click.option("--backend-set", "backend_sets", multiple=True, metavar="KEY=VALUE",
                     help="Backend setting by name, e.g. --backend-set graph_optimization_level=basic."),
        click.option("--cpus", default=None, metavar="LIST",
                     help="Pin the run to these CPUs (0, 0-1, 0,2); the system card records them."),
        click.option("--quick", is_flag=True, help="Short minimums (1 s); the run is marked non-compliant."),
    ]
    if extras:
        options += [
            click.option("--loadgen", type=click.Choice(["infersight", "mlperf"]), default="infersight",
                         show_default=True,
                         help="Load generator: ours, or MLCommons' official LoadGen (compliance-grade timing)."),
            click.option("--label", default=None, help="Free text stored with the run."),
            click.option("--system-extra", type=click.Path(exists=True, dir_okay=False), default=None,
                         help="YAML file of system-card fields to add (price_per_hour_usd, power_w, ...)."),
        ]

    def decorate(fn: Callable) -> Callable:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


def run_request(task: str, *, backend: str, model_variant: str, sets: tuple[str, ...], backend_sets: tuple[str, ...],
                cpus: str | None, quick: bool, scenario: str, loadgen: str = "infersight",
                label: str | None = None, system_extra: str | None = None,
                scenario_settings: dict[str, Any] | None = None, **shortcuts: Any) -> RunRequest:
    """The RunRequest the run options describe (`shortcuts`: threads, batch_size, provider)."""
    settings = {**parse_sets(backend_sets, "--backend-set"), **backend_options(backend, shortcuts)}
    return RunRequest.parse(
        task=task, backend=backend, scenario=scenario, model_variant=model_variant, backend_settings=settings,
        scenario_settings={**parse_sets(sets), **(scenario_settings or {})}, quick=quick, label=label,
        system_extra=load_system_extra(Path(system_extra)) if system_extra else {}, loadgen=loadgen, cpus=cpus)


class BarReporter(Reporter):
    """A rich progress bar on stderr: one task per phase; the display starts with the first phase, so a
    request refused before anything runs prints its error alone."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task = progress, None

    def phase(self, text: str) -> None:
        self.progress.start()
        if self.task is not None:
            self.progress.update(self.task, completed=1.0)
        self.task = self.progress.add_task(text, total=1.0, info="")

    def update(self, fraction: float, text: str) -> None:
        self.progress.update(self.task, completed=min(fraction, 1.0), info=text)

    def warn(self, text: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/] {text}")

    def done(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=1.0)


@contextmanager
def progress_bar(*columns: ProgressColumn, transient: bool = True) -> Iterator[Progress]:
    """A progress display on stderr (by default the one runs and searches draw), started by the first
    reporter call that shows something (`Progress.start`) and stopped when the block ends."""
    columns = columns or (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                          TimeElapsedColumn())
    progress = Progress(*columns, console=err, transient=transient)
    try:
        yield progress
    finally:
        if progress.live.is_started:  # a display never started prints nothing, not even a newline
            progress.stop()
