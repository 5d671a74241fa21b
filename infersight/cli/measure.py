"""`infersight run` and `infersight build`: measure a task, build a task's models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from infersight.cli._common import emit_json, err, json_option, out, with_store
from infersight.cli.inspect import render_run
from runner import registry
from runner.cards.system import load_system_extra
from runner.run import Reporter, RunRequest, execute_run, prepare_run

__all__ = ["COMMANDS"]


class BarReporter(Reporter):
    """A rich progress bar on stderr: one task per phase."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.task = progress, None

    def phase(self, text: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=1.0)
        self.task = self.progress.add_task(text, total=1.0, info="")

    def update(self, fraction: float, text: str) -> None:
        self.progress.update(self.task, completed=min(fraction, 1.0), info=text)

    def done(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=1.0)


def _parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    settings = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--set")
        settings[key.strip()] = yaml.safe_load(raw)
    return settings


@click.command("run")
@click.argument("task")
@click.option("--backend", default="onnxruntime", show_default=True, help="Backend plugin (see `infersight plugins`).")
@click.option("--scenario", default="offline", show_default=True, help="Scenario plugin: single_stream or offline.")
@click.option("--model-variant", default="fp32", show_default=True, help="Model variant of the task (fp32, int8).")
@click.option("--threads", type=int, default=None, help="Intra-op threads (default: physical cores).")
@click.option("--batch-size", type=int, default=None, help="Samples per inference call (offline batching).")
@click.option("--provider", "providers", multiple=True, help="Execution provider, repeatable, in priority order.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Scenario setting, e.g. --set min_duration_ms=60000 (see `infersight show` for the names).")
@click.option("--backend-set", "backend_sets", multiple=True, metavar="KEY=VALUE",
              help="Backend setting, e.g. --backend-set graph_optimization_level=basic.")
@click.option("--loadgen", type=click.Choice(["infersight", "mlperf"]), default="infersight", show_default=True,
              help="Load generator: ours, or MLCommons' official LoadGen (compliance-grade timing).")
@click.option("--cpus", default=None, metavar="LIST",
              help="Pin the run to these CPUs (0, 0-1, 0,2); the system card records them.")
@click.option("--quick", is_flag=True, help="Short minimums (1 s); the run is marked non-compliant.")
@click.option("--label", default=None, help="Free text stored with the run.")
@click.option("--system-extra", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML file of system-card fields to add (price_per_hour_usd, power_w, ...).")
@json_option
@with_store
def run_cmd(task: str, backend: str, scenario: str, model_variant: str, threads: int | None,
            batch_size: int | None, providers: tuple[str, ...], sets: tuple[str, ...],
            backend_sets: tuple[str, ...], loadgen: str, cpus: str | None, quick: bool, label: str | None,
            system_extra: str | None, as_json: bool, store) -> None:
    """Measure TASK on a backend under a scenario and store the run with its cards and logs.

    \b
    Example:
        infersight run digits --backend onnxruntime --scenario single_stream
        infersight run digits --scenario offline --model-variant int8 --threads 1 --quick
        infersight run digits --scenario single_stream --loadgen mlperf
        infersight run digits --backend openvino --scenario offline --cpus 0 --quick
    """
    backend_settings = _parse_sets(backend_sets)
    for key, value in (("intra_op_threads", threads), ("batch_size", batch_size)):
        if value is not None:
            backend_settings[key] = value
    if providers:
        backend_settings["providers"] = list(providers)
    req = RunRequest(task, backend, scenario, model_variant, backend_settings, _parse_sets(sets),
                     quick, label, _system_extra(system_extra), loadgen, cpus)
    prep = prepare_run(req)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=as_json) as bar:
        reporter = BarReporter(bar)
        run_id = execute_run(prep, store, reporter)
        reporter.done()
    if as_json:
        emit_json(store.get_run(run_id))
    else:
        render_run(store, store.get_run(run_id), brief=True)
        out.print(f"stored as run {run_id} in {store.url}")


def _system_extra(path: str | None) -> dict[str, Any]:
    return load_system_extra(Path(path)) if path else {}


@click.command("build")
@click.argument("task")
@click.option("--quiet", is_flag=True, help="No per-epoch progress.")
def build_cmd(task: str, quiet: bool) -> None:
    """Build TASK's model files (deterministic, from local data) and their model cards.

    \b
    Example:
        infersight build digits
    """
    instance = registry.get("task", task)()
    for path in instance.build(progress=not quiet):
        out.print(f"built {path}")


COMMANDS = [run_cmd, build_cmd]
