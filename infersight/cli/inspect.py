"""`infersight runs`, `show` and `validate`: look at stored runs, their cards and logs."""

from __future__ import annotations

from typing import Any

import click
import numpy as np
from rich import box
from rich.table import Table

from infersight.cli._common import emit_json, json_option, out, with_store
from runner.validate import CARD_MODELS, check_run

__all__ = ["COMMANDS", "render_run"]

_CARD_KEYS = {
    "task": lambda c: f"{c['metadata']['name']} {c['metadata']['version']} ({c['metadata']['category']}), "
                      f"quality {c['metrics']['quality']['metric']}",
    "model": lambda c: f"{c['name']} variant {c['variant']} ({c['precision']}), opset {c['opset']}, "
                       f"sha256 {c['sha256'][:12]}..., {c['size_bytes']:,} bytes, built by {c['build']['script']}",
    "backend": lambda c: f"{c['backend']} ({c['runtime']} {c['runtime_version']}) on {c['device']}, "
                         + ", ".join(f"{k}={v}" for k, v in sorted(c["settings"].items())),
    "system": lambda c: f"{c['host_processor_model_name']}, {c['host_processor_core_count']} cores, "
                        f"{c['host_memory_capacity']}, {c['operating_system']}, Python {c['python_version']}",
}


def _headline(run: dict[str, Any]) -> str:
    if run.get("headline_value") is None:
        return "-"
    return f"{run['headline_metric']} = {run['headline_value']:,.4g} {run['headline_units']}"


def _short_headline(run: dict[str, Any]) -> str:
    if run.get("headline_value") is None:
        return "-"
    name = run["headline_metric"].replace("latency_", "").replace("_ms", "")
    name = "" if name in ("samples_per_second", "queries_per_second", "tokens_per_second") else name + " "
    return f"{name}{run['headline_value']:,.4g} {run['headline_units']}"


def _short_accuracy(run: dict[str, Any]) -> str:
    if run.get("accuracy_value") is None:
        return "-"
    return f"{run['accuracy_value']:.4f} {'ok' if run['accuracy_passed'] else 'LOW'}"


def _accuracy(run: dict[str, Any]) -> str:
    if run.get("accuracy_value") is None:
        return "-"
    verdict = "meets" if run["accuracy_passed"] else "FAILS"
    return f"{run['accuracy_metric']} {run['accuracy_value']:.4f} {verdict} target {run['accuracy_target']:.4f}"


def render_run(store, run: dict[str, Any], brief: bool = False) -> None:
    """Print a run: status, validity and why, headline, accuracy; with cards and logs unless brief."""
    compliance = "" if run["compliant"] else " (non-compliant: " + ("--quick" if run["quick"] else "lowered minimums") + ")"
    out.print(f"[bold]run {run['id']}[/] {run['uuid']}  {run['task_name']} {run['model_variant']} / "
              f"{run['backend_name']} / {run['scenario']}  status: {run['status']}")
    out.print(f"  result: {run.get('validity') or '-'}{compliance}  {_headline(run)}")
    for reason in run.get("validity_reasons") or []:
        out.print(f"    INVALID because {reason}")
    out.print(f"  accuracy: {_accuracy(run)}")
    if run.get("error"):
        out.print(f"  error: {run['error']}")
    if brief:
        return
    out.print(f"  provenance: {run['provenance']} by {run['source']} on {run['hostname']}, "
              f"{run['started_at']} .. {run['finished_at']}")
    out.print("[bold]  cards[/]")
    for kind in CARD_MODELS:
        digest = run.get(f"{kind}_hash")
        line = _CARD_KEYS[kind](store.get_card(kind, digest)) if digest else "MISSING"
        out.print(f"    {kind:8} {digest[:12] if digest else '':12}  {line}")
    _render_logs(store, run)


def _render_logs(store, run: dict[str, Any]) -> None:
    rec = store.read_perf_samples(run["id"])
    s = run.get("summary") or {}
    out.print("[bold]  logs[/]")
    lat = ", ".join(f"p{p} {s[k]:.4f} ms" for p, k in (("50", "latency_p50_ms"), ("90", "latency_p90_ms"),
                                                          ("99", "latency_p99_ms")) if k in s)
    out.print(f"    performance: {len(rec['completed_ns']):,} per-sample records in "
              f"{len(np.unique(rec['query_index'])):,} queries, {s.get('duration_ns', 0) / 1e9:.2f} s; {lat}")
    acc = store.read_accuracy_samples(run["id"])
    out.print(f"    accuracy: {len(acc):,} per-sample predictions; {_accuracy(run)}")
    eff = (s.get("effective_settings") or {})
    if eff:
        out.print("    effective scenario settings: " + ", ".join(f"{k}={v}" for k, v in sorted(eff.items())))


@click.command("runs")
@click.option("--task", default=None, help="Only runs of this task.")
@click.option("--backend", default=None, help="Only runs on this backend.")
@click.option("--scenario", default=None, help="Only runs of this scenario.")
@click.option("--status", default=None, type=click.Choice(["running", "complete", "failed", "aborted"]))
@click.option("--limit", default=50, show_default=True, help="At most this many, newest first.")
@json_option
@with_store
def runs_cmd(task, backend, scenario, status, limit, as_json, store) -> None:
    """List stored runs, newest first.

    \b
    Example:
        infersight runs --task digits --scenario offline
    """
    rows = store.list_runs(task=task, backend=backend, scenario=scenario, status=status, limit=limit)
    if as_json:
        emit_json(rows)
        return
    table = Table("id", "task", "backend", "scenario", "result", "headline", "accuracy",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for r in rows:
        result = r.get("validity") or "-" if r["status"] == "complete" else r["status"]
        table.add_row(str(r["id"]), f"{r['task_name']}/{r['model_variant']}",
                      r["backend_name"], r["scenario"], result, _short_headline(r), _short_accuracy(r))
    out.print(table)


@click.command("show")
@click.argument("run")
@json_option
@with_store
def show_cmd(run: str, as_json: bool, store) -> None:
    """Show RUN (an id or a uuid prefix): its cards, settings, headline metric, validity and why.

    \b
    Example:
        infersight show 1
    """
    record = store.get_run(run)
    if as_json:
        cards = {k: store.get_card(k, record[f"{k}_hash"]) for k in CARD_MODELS if record.get(f"{k}_hash")}
        emit_json({**record, "cards": cards})
        return
    render_run(store, record)


@click.command("validate")
@click.argument("run")
@json_option
@with_store
def validate_cmd(run: str, as_json: bool, store) -> None:
    """Check that RUN's four cards and two logs are present and consistent; exit 1 if not.

    \b
    Example:
        infersight validate 1
    """
    record = store.get_run(run)
    problems = check_run(store, record["id"])
    if record["status"] != "complete":
        problems.insert(0, f"status is {record['status']}" + (f": {record['error']}" if record.get("error") else ""))
    if as_json:
        emit_json({"run": record["id"], "complete": not problems, "problems": problems})
    elif problems:
        out.print(f"run {record['id']} is not complete:")
        for p in problems:
            out.print(f"  - {p}")
    else:
        out.print(f"run {record['id']} is complete: task, model, backend and system cards and the "
                  f"performance and accuracy logs are present and consistent")
    if problems:
        raise click.exceptions.Exit(1)


COMMANDS = [runs_cmd, show_cmd, validate_cmd]
