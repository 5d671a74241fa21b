"""`infersight run` and `infersight build`: measure a task, build a task's models."""

from __future__ import annotations

from typing import Any

import click

from infersight.cli._common import emit_json, json_option, out, with_store
from infersight.cli._run_options import BarReporter, progress_bar, run_options, run_request
from infersight.cli.inspect import render_run
from runner.pins import build_task, check_build
from runner.services import measure_run
from runner.store import Store
from runner.user_tasks import open_task

__all__ = ["COMMANDS"]


@click.command("run")
@click.argument("task")
@run_options()
@click.option("--target-qps", type=float, default=None, help="Server: target QPS (shortcut for --set target_qps=Q).")
@json_option
@with_store
def run_cmd(task: str, target_qps: float | None, as_json: bool, store: Store, **options: Any) -> None:
    """Measure TASK (a task name, or the path of a task card: task.yaml) on a backend under a scenario and
    store the run with its cards and logs. `infersight peak` searches a server run's highest VALID QPS.

    \b
    Example:
        infersight run digits --backend onnxruntime --scenario single_stream
        infersight run digits --scenario offline --model-variant int8 --threads 1 --quick
        infersight run digits --backend openvino --threads 2 --quick
        infersight run digits --scenario single_stream --loadgen mlperf
        infersight run digits --backend openvino --scenario offline --cpus 0 --quick
        infersight run digits --scenario server --target-qps 2000
        infersight run infersight-tasks/mymodel/task.yaml --scenario offline --quick
    """
    qps = {} if target_qps is None else {"target_qps": target_qps}
    request = run_request(task, scenario_settings=qps, **options)
    with progress_bar(transient=as_json) as bar:
        reporter = BarReporter(bar)
        run = measure_run(request, store, reporter)
        reporter.done()
    if as_json:
        emit_json(run.to_dict())
    else:
        render_run(store, run, brief=True)
        out.print(f"stored as run {run.id} in {store.url}")


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
