"""`infersight run` and `infersight build`: measure a task, build a task's models."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infersight.cli._common import emit_json, err, json_option, out, with_store
from infersight.cli.inspect import render_run
from runner.cards.system import load_system_extra
from runner.pins import build_task, check_build
from runner.loading import load_yaml_text
from runner.peak import Probe, SearchReporter, run_peak_search
from runner.run import Reporter, RunRequest, execute_run, prepare_run
from runner.user_tasks import open_task

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

    def warn(self, text: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/] {text}")

    def done(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=1.0)


def _parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    settings = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--set")
        settings[key.strip()] = load_yaml_text(raw, "--set", (key.strip(),))[0]
    return settings


@click.command("run")
@click.argument("task")
@click.option("--backend", default="onnxruntime", show_default=True, help="Backend plugin (see `infersight plugins`).")
@click.option("--scenario", default="offline", show_default=True, help="Scenario plugin: single_stream, multi_stream, server, offline or interactive (see `infersight plugins`).")
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
@click.option("--target-qps", type=float, default=None,
              help="Server: target QPS (shortcut for --set target_qps=Q); with --find-peak, the first QPS tried.")
@click.option("--find-peak", is_flag=True,
              help="Server: search for the highest target QPS that stays VALID (every probe is a stored run).")
@click.option("--repeats-near-edge", type=int, default=3, show_default=True,
              help="--find-peak: runs per QPS near the knee; P(VALID) = valid / runs.")
@click.option("--valid-threshold", type=float, default=1.0, show_default=True,
              help="--find-peak: P(VALID) a QPS needs to count as VALID.")
@click.option("--peak-tolerance", type=float, default=0.02, show_default=True,
              help="--find-peak: stop when the bracket is this narrow, relative to its lower end.")
@click.option("--min-qps", type=float, default=None, help="--find-peak: never probe below this QPS.")
@click.option("--max-qps", type=float, default=None, help="--find-peak: never probe above this QPS.")
@click.option("--label", default=None, help="Free text stored with the run.")
@click.option("--system-extra", type=click.Path(exists=True, dir_okay=False), default=None,
              help="YAML file of system-card fields to add (price_per_hour_usd, power_w, ...).")
@json_option
@with_store
def run_cmd(task: str, backend: str, scenario: str, model_variant: str, threads: int | None,
            batch_size: int | None, providers: tuple[str, ...], sets: tuple[str, ...],
            backend_sets: tuple[str, ...], loadgen: str, cpus: str | None, quick: bool, target_qps: float | None,
            find_peak: bool, repeats_near_edge: int, valid_threshold: float, peak_tolerance: float,
            min_qps: float | None, max_qps: float | None, label: str | None, system_extra: str | None,
            as_json: bool, store) -> None:
    """Measure TASK (a task name, or the path of a task card: task.yaml) on a backend under a scenario and
    store the run with its cards and logs.

    \b
    Example:
        infersight run digits --backend onnxruntime --scenario single_stream
        infersight run digits --scenario offline --model-variant int8 --threads 1 --quick
        infersight run digits --scenario single_stream --loadgen mlperf
        infersight run digits --backend openvino --scenario offline --cpus 0 --quick
        infersight run digits --scenario server --target-qps 2000
        infersight run digits --scenario server --find-peak --quick --repeats-near-edge 3
        infersight run infersight-tasks/mymodel/task.yaml --scenario offline --quick
    """
    backend_settings = _parse_sets(backend_sets)
    for key, value in (("intra_op_threads", threads), ("batch_size", batch_size)):
        if value is not None:
            backend_settings[key] = value
    if providers:
        backend_settings["providers"] = list(providers)
    scenario_settings = _parse_sets(sets)
    if target_qps is not None:
        scenario_settings["target_qps"] = target_qps
    req = RunRequest(task, backend, scenario, model_variant, backend_settings, scenario_settings,
                     quick, label, _system_extra(system_extra), loadgen, cpus)
    peak = {"start_qps": target_qps, "repeats_near_edge": repeats_near_edge, "valid_threshold": valid_threshold,
            "tolerance": peak_tolerance, "min_qps": min_qps, "max_qps": max_qps}
    if find_peak:
        _find_peak(req, store, {k: v for k, v in peak.items() if v is not None}, as_json)
        return
    ctx = click.get_current_context()
    stray = [f"--{name.replace('_', '-')}" for name in ("repeats_near_edge", "valid_threshold", "peak_tolerance",
                                                        "min_qps", "max_qps")
             if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
    if stray:
        raise click.UsageError(f"{', '.join(stray)}: options of --find-peak (add it, or leave them out)")
    prep = prepare_run(req)
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=as_json) as bar:
        reporter = BarReporter(bar)
        run_id = execute_run(prep, store, reporter)
        reporter.done()
    if as_json:
        emit_json(store.get_run(run_id).to_dict())
    else:
        render_run(store, store.get_run(run_id), brief=True)
        out.print(f"stored as run {run_id} in {store.url}")


class SearchBar(BarReporter, SearchReporter):
    """One progress bar for the probe being run, and a line per finished probe."""

    def phase(self, text: str) -> None:
        if self.task is None:
            self.task = self.progress.add_task(text, total=1.0, info="")
        else:
            self.progress.reset(self.task, description=text, info="")

    def probe_done(self, probe: Probe, result: dict[str, Any]) -> None:
        self.progress.console.print(f"probe {len(result['probes'])}: {_probe_line(probe)}")


def _probe_line(p: Probe | dict[str, Any]) -> str:
    p = p if isinstance(p, dict) else asdict(p)
    figures = [f"p99 {p['latency_ms']:.4g} ms" if p.get("latency_ms") is not None else None,
               f"{p['over_bound']:,} over bound" if p.get("over_bound") is not None else None,
               f"achieved {p['achieved_qps']:,.0f} QPS" if p.get("achieved_qps") is not None else None]
    verdict = "LOADGEN LIMIT (inconclusive)" if p.get("inconclusive") else ("VALID" if p["valid"] else "INVALID")
    return (f"target {p['target_qps']:,.6g} QPS {verdict} (run {p['run_id']}; "
            + ", ".join(f for f in figures if f) + ")")


def _find_peak(req: RunRequest, store, settings: dict[str, Any], as_json: bool) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        search = run_peak_search(req, store, settings, SearchBar(bar))
    if as_json:
        emit_json(search)
        return
    render_search(search)


def render_search(search: dict[str, Any]) -> None:
    """Print a peak search: its P(VALID) table, its probes and the peak."""
    result = search.get("result") or {}
    table = Table("target QPS", "runs", "VALID", "P(VALID)", "loadgen limits", "probe runs", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for row in result.get("table", []):
        ids = [str(p["run_id"]) for p in result["probes"] if p["target_qps"] == row["target_qps"]]
        p_valid = "-" if row.get("p_valid") is None else f"{row['p_valid']:.2f}"
        table.add_row(f"{row['target_qps']:,.6g}", str(row["runs"]), str(row["valid"]), p_valid,
                      str(row.get("loadgen_limits", 0)), ", ".join(ids))
    out.print(table)
    peak = result.get("peak_qps")
    compliance = "" if result.get("compliant") else " (non-compliant: quick or lowered minimums)"
    out.print(f"peak search {search['id']} {search['status']}: peak target QPS "
              f"{'none found' if peak is None else f'{peak:,.6g}'}{compliance}; bracket "
              + " .. ".join("-" if q is None else f"{q:,.6g}" for q in result.get("bracket", [None, None])))
    if result.get("knee_flips"):
        out.print("  the knee flips: P(VALID) strictly between 0 and 1 at "
                  + ", ".join(f"{q:,.6g}" for q in result["flipping_qps"]) + " QPS")
    if result.get("note"):
        out.print(f"  note: {result['note']}")


def _system_extra(path: str | None) -> dict[str, Any]:
    return load_system_extra(Path(path)) if path else {}


@click.command("build")
@click.argument("task")
@click.option("--check", is_flag=True, help="Rebuild into a temporary folder and say, per variant, whether this "
                                            "machine reproduces the pinned file (nothing here changes).")
@click.option("--quiet", is_flag=True, help="No per-epoch progress.")
@json_option
def build_cmd(task: str, check: bool, quiet: bool, as_json: bool) -> None:
    """Build TASK's model files (deterministic, from local data) and their model cards; TASK may be the path
    of a declarative task card (its model cards and unpinned int8 variant are made again).

    A task whose card pins its reference files (`models:` in task.yaml, by sha256) keeps them: when
    they are here with their pinned bytes nothing is rebuilt; a missing or changed file is rebuilt
    and put back only if this machine's rebuild has the pinned bytes, else the build is refused
    (exit 2, nothing installed) with the `git checkout` that restores them. --check rebuilds into a
    temporary folder and reports per variant whether this machine reproduces the pinned bytes and
    the quality reached (exit 0 when every variant is reproduced, 1 otherwise).

    \b
    Example:
        infersight build digits
        infersight build digits --check
        infersight build infersight-tasks/mymodel/task.yaml
    """
    instance = open_task(task)
    if check:
        statuses = check_build(instance, progress=not quiet and not as_json)
        _print_check(task, statuses, as_json)
        raise SystemExit(0 if all(s.reproduced for s in statuses) else 1)
    outcome = build_task(instance, progress=not quiet and not as_json)
    if as_json:
        emit_json(outcome.to_dict())
    elif outcome.action == "verified":
        out.print(f"{task}: pinned reference files present with their pinned sha256; nothing rebuilt "
                  f"(`infersight build {task} --check` rebuilds to compare)")
    for status in outcome.statuses if not as_json else ():
        out.print(f"  {status.variant}: {instance.models_dir / status.file} sha256 {status.pinned_sha256}")
    for path in outcome.cards if not as_json else ():
        out.print(f"{'built' if outcome.action == 'built' else 'restored (rebuilt with the pinned bytes)'} {path}")


def _print_check(task: str, statuses: list[Any], as_json: bool) -> None:
    if as_json:
        emit_json({"task": task, "variants": [s.to_dict() for s in statuses]})
        return
    if not statuses:
        out.print(f"{task}: its task card pins no model files; nothing to check")
    for s in statuses:
        verdict = "reproduced" if s.reproduced else f"NOT reproduced (rebuilt sha256 {s.rebuilt_sha256})"
        quality = "" if s.rebuilt_quality is None else (
            f"; {s.metric} {s.rebuilt_quality:.4f} rebuilt, {s.pinned_quality:.4f} pinned"
            if s.pinned_quality is not None else f"; {s.metric} {s.rebuilt_quality:.4f} rebuilt")
        here = "" if s.present_ok else " (the file here differs from its pin or is missing)"
        out.print(f"{task} {s.variant}: pinned sha256 {s.pinned_sha256}: {verdict}{quality}{here}")


COMMANDS = [run_cmd, build_cmd]
