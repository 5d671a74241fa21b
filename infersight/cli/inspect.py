"""`infersight runs`, `show` and `validate`: look at stored runs, their cards and logs."""

from __future__ import annotations

from typing import Any

import click
import numpy as np
from rich import box
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from analysis.load import runs_of
from analysis.settings import distinguishing
from infersight.cli._common import emit_json, json_option, out, with_store
from reports.services import DescribeRunRequest, describe_run
from runner.cpus import format_cpus
from runner.store import RunRecord, Store
from runner.store.searches import SearchLog
from runner.store.sweeps import SweepLog
from runner.validate import CARD_MODELS, check_run, why_non_compliant

__all__ = ["COMMANDS", "render_run"]

_CARD_KEYS = {
    "task": lambda c: f"{c['metadata']['name']} {c['metadata']['version']} ({c['metadata']['category']}), "
                      f"quality {c['metrics']['quality']['metric']}",
    "model": lambda c: f"{c['name']} variant {c['variant']} ({c['precision']}), opset {c['opset']}, "
                       f"sha256 {c['sha256'][:12]}..., {c['size_bytes']:,} bytes, built by {c['build']['script']}",
    "backend": lambda c: f"{c['backend']} ({c['runtime']} {c['runtime_version']}) on {c['device']}, "
                         + ", ".join(f"{k}={v}" for k, v in sorted(c["settings"].items())),
    "system": lambda c: f"{c['host_processor_model_name']}, {c['host_processor_core_count']} cores{_pinned(c)}, "
                        f"{c['host_memory_capacity']}, {c['operating_system']}, Python {c['python_version']}",
}


def _pinned(card: dict[str, Any]) -> str:
    if not card.get("cpus_used"):
        return ""
    return f" (run pinned to {card['cpu_count_used']} of them: CPUs {format_cpus(card['cpus_used'])})"


def _resources(s: dict[str, Any]) -> str:
    parts = []
    if s.get("peak_rss_bytes") is not None:
        parts.append(f"peak RSS {s['peak_rss_bytes'] / 2**20:,.1f} MiB ({s.get('peak_rss_scope', 'run')})")
    if s.get("cpu_utilisation") is not None:
        parts.append(f"CPU utilisation {s['cpu_utilisation']:.0%} of {s.get('cpu_cores_available', '?')} "
                     f"core(s) over the {s.get('cpu_utilisation_span', 'run')}")
    if s.get("gpu_memory_used_bytes") is not None:
        parts.append(f"GPU memory {s['gpu_memory_used_bytes'] / 2**20:,.0f} MiB")
    return ", ".join(parts)


def _headline(run: RunRecord) -> str:
    if run.headline_value is None:
        return "-"
    return f"{run.headline_metric} = {run.headline_value:,.4g} {run.headline_units}"


def _short_headline(run: RunRecord) -> str:
    if run.headline_value is None:
        return "-"
    name = run.headline_metric.replace("latency_", "").replace("_ms", "")
    name = "" if name in ("samples_per_second", "queries_per_second", "tokens_per_second") else name + " "
    value = run.headline_value
    return f"{name}{value:,.0f} {run.headline_units}" if abs(value) >= 1000 else \
        f"{name}{value:.4g} {run.headline_units}"


def _short_accuracy(run: RunRecord) -> str:
    if run.accuracy_value is None:
        return "-"
    verdict = {True: "ok", False: "LOW"}.get(run.accuracy_passed, "?")
    return f"{run.accuracy_value:.4f} {verdict}"


def _accuracy(run: RunRecord) -> str:
    if run.accuracy_value is None:
        return "-"
    verdict = {True: "meets", False: "FAILS"}.get(run.accuracy_passed, "cannot be checked against")
    target = "-" if run.accuracy_target is None else f"{run.accuracy_target:.4f}"
    return f"{run.accuracy_metric} {run.accuracy_value:.4f} {verdict} target {target}"


def render_run(store: Store, run: RunRecord, brief: bool = False) -> None:
    """Print a run: status, validity and why, headline, accuracy; with cards and logs unless brief."""
    imported = store.get_imported(run.id) if run.provenance == "imported" else None
    why = why_non_compliant(run, imported)
    compliance = f" (non-compliant: {why})" if why else ""
    out.print(f"[bold]run {run.id}[/] {run.uuid}  {run.task_name} {run.model_variant} / "
              f"{run.backend_name} / {run.scenario}  status: {run.status}")
    out.print(f"  result: {run.validity or '-'}{compliance}  {_headline(run)}")
    limit = run.validity == "LOADGEN_LIMIT"
    for i, reason in enumerate(run.validity_reasons or []):
        verdict = ("LOADGEN LIMIT (not a verdict on the system)" if i == 0 else "charged to the system, INVALID") \
            if limit else "INVALID"
        out.print(f"    {verdict} because {reason}")
    out.print(f"  accuracy: {_accuracy(run)}")
    if run.error:
        out.print(f"  error: {run.error}")
    if brief:
        return
    if imported is not None:
        out.print(f"  provenance: imported from {run.source} ({imported['availability']}), "
                  f"{imported['source_path']}; measured {run.started_at}, imported {run.finished_at}")
    else:
        out.print(f"  provenance: {run.provenance} by {run.source} on {run.hostname}, "
                  f"{run.started_at} .. {run.finished_at}")
        sweep = SweepLog(store).sweep_of_run(run.id)
        if sweep:
            out.print(f"  sweep: {sweep['name']} (id {sweep['sweep_id']}), cell {sweep['cell_key'][:12]}, "
                      f"attempt {sweep['attempt']}")
        search = SearchLog(store).search_of_run(run.id) if run.search_id else None
        if search:
            peak = search.peak_qps
            out.print(f"  peak search: probe of search {search.id} ({search.status}), peak target QPS "
                      f"{'-' if peak is None else f'{peak:,.6g}'}")
    out.print("[bold]  cards[/]")
    for kind in CARD_MODELS:
        digest = run.card_hashes.get(kind)
        line = _card_line(kind, store.get_card(kind, digest)) if digest else "MISSING"
        out.print(f"    {kind:8} {digest[:12] if digest else '':12}  {line}")
    if imported is not None:
        _render_imported_logs(run, imported)
    else:
        _render_logs(store, run)


def _card_line(kind: str, card: dict[str, Any]) -> str:
    if card.get("origin") == "imported" and kind == "model":
        fraction = card.get("accuracy_target_fraction")
        return (f"{card['name']} (imported MLPerf reference model), weights "
                f"{card.get('weight_data_types') or card.get('precision') or 'not published'}"
                + (f", accuracy target {fraction:g} of the reference" if fraction else ""))
    if kind == "system" and "python_version" in card and not card["python_version"]:
        accelerators = f", {card['accelerators_per_node']}x {card['accelerator_model_name']}"
        return (f"{card['system_name']}: {card['host_processor_model_name']}, {card['host_processor_core_count']} "
                f"cores, {card['host_memory_capacity']}{accelerators}, {card['operating_system']}")
    return _CARD_KEYS[kind](card) + (_timing(card) if kind == "system" else "")


def _timing(card: dict[str, Any]) -> str:
    """A system card's CPU isolation and timing calibration (runner.loadgen.isolation, .calibration), if any."""
    parts = []
    if card.get("issuer_cpu") is not None:
        parts.append(f"issuer on CPU {card['issuer_cpu']}, backend on CPU "
                     f"{','.join(map(str, card['backend_cpus'])) if card.get('backend_cpus') else 'all'}")
    cal = card.get("timing_calibration")
    if cal:
        parts.append(f"calibrated {cal.get('measured_at')} ({cal.get('source')}): sleep overshoot p50 "
                     f"{cal['sleep_overshoot_us']['p50']:g} / p99 {cal['sleep_overshoot_us']['p99']:g} us, thread "
                     f"hand-over p99 {cal['handover_us']['p99']:g} us, issuer spin {cal.get('spin_us'):g} us"
                     + _pinning(cal) + (f"; {cal['note']}" if cal.get("note") else ""))
    return "; " + "; ".join(parts) if parts else ""


def _pinning(cal: dict[str, Any]) -> str:
    """The calibration's choice of a pinned or floating issuer and the trial it came from ('' for older ones)."""
    trial = cal.get("issuer_trial_us")
    if not cal.get("issuer_pinning"):
        return ""
    return (f", issuer {cal['issuer_pinning']}" + (f" (trial p99 lateness: pinned {trial['pinned']['p99']:g} us, "
                                                  f"floating {trial['floating']['p99']:g} us)" if trial else ""))


def _render_imported_logs(run: RunRecord, imported: dict[str, Any]) -> None:
    s = run.summary or {}
    out.print("[bold]  logs[/]")
    pct = (s.get("percentiles_ns") or {}).get("latency") or {}
    lat = ", ".join(f"p{p} {v / 1e6:.4f} ms" for p, v in pct.items())
    es = (s.get("early_stopping_ns") or {}).get("latency") or {}
    estimates = ", ".join(f"p{p} {v / 1e6:.4f} ms" for p, v in es.items())
    out.print(f"    performance: MLPerf summary, no per-query records; headline from {s.get('headline_source')} "
              f"{s.get('headline_field')}; latency {lat or '-'}"
              + (f"; early-stopping estimates {estimates}" if estimates else ""))
    figures = ", ".join(f"{k} {v:g}" for k, v in (s.get("accuracy") or {}).items())
    out.print(f"    accuracy: accuracy.txt figures: {figures or '-'}; {_accuracy(run)}")
    eff = s.get("effective_settings") or {}
    if eff:
        out.print(f"    effective settings ({s.get('effective_settings_source')}): "
                  + ", ".join(f"{k}={v}" for k, v in sorted(eff.items())))
    verdicts = ", ".join(f"{t} {v}" for t, v in (imported["compliance"] or {}).items())
    out.print(f"    compliance: {verdicts or 'no compliance tests published'}")
    power = imported.get("power")
    if power and power.get("value") is not None:
        out.print(f"    power: {power['value']:.6g} {power['units']} ({power['readings']} readings)")


def _streaming(s: dict[str, Any]) -> str:
    """TTFT/TPOT/inter-token percentiles and throughput of a streaming (interactive) run."""
    parts = [(f"{s.get('output_tokens', 0):,} tokens in {s.get('session_count', 0):,} sessions, "
              f"{s.get('tokens_per_second', 0):,.1f} tokens/s, {s.get('requests_per_second', 0):,.2f} requests/s")]
    for key, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("itl", "inter-token")):
        if f"{key}_p50_ms" in s:
            parts.append(f"{label} p50 {s[f'{key}_p50_ms']:.4g} / p99 {s[f'{key}_p99_ms']:.4g} ms"
                         + (f" ({s[f'{key}_over_bound']:,} over the bound)" if f"{key}_over_bound" in s else ""))
    if "context_tokens_mean" in s:
        parts.append(f"context mean {s['context_tokens_mean']:,.1f} / max {s['context_tokens_max']:,} tokens")
    return "; ".join(parts)


def _lateness(s: dict[str, Any]) -> str:
    """Who issued the queries, how late (runner.loadgen.lateness), against which tolerance, and how it was arranged."""
    plan = s.get("issuing") or {}
    kept = "within" if s.get("issue_delay_within_tolerance", True) else "ABOVE"
    return (f"{'issued by ' + s['issuer'] + ', ' if s.get('issuer') else ''}late by p50 {_us(s['issue_delay_p50_us'])}, "
            f"p99 {_us(s['issue_delay_p99_us'])} over {s.get('issue_delay_count', 0):,} queries, {kept} the tolerance "
            f"{_us(s['issue_delay_tolerance_us'])}" + (f"; {plan['why']}, spin {plan['spin_us']:g} us" if plan else "")
            + (f"; machine load {s['machine_load_1m']:g} on {s['machine_cpus']} CPUs" if s.get("machine_load_1m") is not None
               else "") + (f"; warning: {plan['warning']}" if plan.get("warning") else ""))


def _us(value: float) -> str:
    """A duration given in microseconds, in us below a millisecond and in ms from there."""
    return f"{value:.3g} us" if value < 1_000 else f"{value / 1_000:,.3g} ms"


def _render_logs(store: Store, run: RunRecord) -> None:
    rec = store.read_perf_samples(run.id)
    s = run.summary or {}
    out.print("[bold]  logs[/]")
    lat = ", ".join(f"p{p} {s[k]:.4f} ms" for p, k in (("50", "latency_p50_ms"), ("90", "latency_p90_ms"),
                                                          ("99", "latency_p99_ms")) if k in s)
    out.print(f"    performance: {len(rec['completed_ns']):,} per-sample records in "
              f"{len(np.unique(rec['query_index'])):,} queries, {s.get('duration_ns', 0) / 1e9:.2f} s; {lat}")
    _render_fairness(s.get("fairness") or {})
    if "ttft_p50_ms" in s:
        out.print(f"    streaming: {_streaming(s)}")
    if run.scenario == "server" and s.get("query_count"):
        out.print(f"    server: target {s['target_qps']:,.6g} QPS, achieved {s['achieved_qps']:,.0f}; "
                  f"{s['within_bound_fraction']:.2%} of {s['query_count']:,} queries within {s['latency_bound_ms']:g} ms "
                  f"({s['over_bound_count']:,} over); queueing delay mean {s['queueing_delay_mean_ms']:.4g} ms, "
                  f"p99 {s['queueing_delay_p99_ms']:.4g} ms")
    if s.get("issue_delay_p99_us") is not None:
        out.print(f"    load generator: {_lateness(s)}")
    if s.get("recommendation"):
        out.print(f"    recommendation: {s['recommendation']}")
    acc = store.read_accuracy_samples(run.id)
    out.print(f"    accuracy: {len(acc):,} per-sample predictions; {_accuracy(run)}")
    if _resources(s):
        out.print(f"    resources: {_resources(s)}")
    eff = (s.get("effective_settings") or {})
    if eff:
        out.print("    effective scenario settings: " + ", ".join(f"{k}={v}" for k, v in sorted(eff.items())))


def _render_fairness(f: dict[str, Any]) -> None:
    """The fairness collector of a run with several concurrent streams (multi_stream): one row per stream."""
    if len(f.get("per_stream") or []) < 2:
        return
    ms = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    table = Table("stream", "queries", "queries/s", "mean ms", "p50 ms", "p90 ms", "p99 ms",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for p in f["per_stream"]:
        table.add_row(str(p["stream"]), f"{p['query_count']:,}", f"{p['queries_per_second']:,.1f}",
                      ms(p["latency_mean_ms"]), ms(p["latency_p50_ms"]), ms(p["latency_p90_ms"]), ms(p["latency_p99_ms"]))
    jain = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    ratio = f.get("worst_to_best_p99")
    out.print(f"    fairness over {len(f['per_stream'])} streams: Jain's index {jain(f.get('jain_index_throughput'))} "
              f"(throughput), {jain(f.get('jain_index_mean_latency'))} (mean latency); worst stream "
              f"{f.get('worst_stream', '-')} (p99 {ms(f.get('worst_p99_ms'))} ms, "
              f"{'-' if ratio is None else f'{ratio:.2f}'}x the best stream {f.get('best_stream', '-')})")
    out.print(Padding(table, (0, 0, 0, 6), expand=False))


@click.command("runs")
@click.option("--task", default=None, help="Only runs of this task (llama2-70b and mlperf-llama2-70b are one).")
@click.option("--backend", default=None, help="Only runs on this backend.")
@click.option("--scenario", default=None, help="Only runs of this scenario.")
@click.option("--status", default=None, type=click.Choice(["running", "complete", "failed", "aborted"]))
@click.option("--source", default=None, type=click.Choice(["mlperf", "measured"]),
              help="Only runs imported from MLPerf results (with system, accelerator, model), or measured here.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(0),
              help="At most this many, newest first (0: every run); the table says when more match.")
@json_option
@with_store
def runs_cmd(task, backend, scenario, status, source, limit, as_json, store) -> None:
    """List stored runs, newest first: cores used, key settings (threads and hints, and whatever setting
    differs between listed runs of one task, backend and scenario, such as a Server run's target QPS),
    start date and whether the run was quick (non-compliant).

    \b
    Example:
        infersight runs --task digits --scenario offline
        infersight runs --source mlperf --scenario server
    """
    rows = runs_of(store, task, backend=backend, scenario=scenario, status=status, source=source,
                   limit=limit + 1 if limit else None)
    more = bool(limit) and len(rows) > limit
    rows = rows[:limit] if limit else rows
    if as_json:
        emit_json([r.to_dict() for r in rows])
        return
    out.print(_imported_table(rows) if source == "mlperf" else _runs_table(store, rows))
    if more:
        out.print(f"[yellow]showing the newest {limit} runs only: more match (--limit N shows more, --limit 0 "
                  f"every one)[/]")


def _runs_table(store: Store, rows: list[RunRecord]) -> Table:
    """Runs measured here or imported: what, where (cores), how (key settings), when, quick, result."""
    table = Table("id", "task", "backend", "scenario", "cores", "key settings", "started (UTC)", "quick", "result",
                  "headline", "accuracy", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    cores: dict[str, str] = {}
    for r, settings in zip(rows, distinguishing(rows)):
        if r.system_hash not in cores:
            cores[r.system_hash] = _cores(store, r.system_hash)
        result = r.validity or "-" if r.status == "complete" else r.status
        table.add_row(str(r.id), f"{r.task_name}/{r.model_variant}", r.backend_name, r.scenario,
                      cores[r.system_hash], escape(settings), f"{r.started_at:%Y-%m-%d %H:%M}",
                      "quick" if r.quick else "", result, _short_headline(r), _short_accuracy(r))
    return table


def _cores(store: Store, system_hash: str) -> str:
    """The CPUs a system card says the run could use, '-' where it does not say."""
    try:
        card = store.get_card("system", system_hash)
    except KeyError:
        return "-"
    count = card.get("cpu_count_used") or card.get("host_processor_core_count")
    return str(count) if count else "-"




def _imported_table(rows: list[RunRecord]) -> Table:
    """Imported runs: where they come from (system, accelerator) and what they measured."""
    table = Table("id", "submitter", "system", "accelerator", "model", "scenario", "result", "metric", "value",
                  "units", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for r in rows:
        imp = r.imported
        value = "-" if r.headline_value is None else f"{r.headline_value:,.6g}"
        table.add_row(str(r.id), imp["submitter"], imp["system_name"], imp["accelerator"] or "none (CPU)",
                      imp["model"], r.scenario, r.validity or "-", r.headline_metric or "-",
                      value, r.headline_units or "-")
    return table


@click.command("show")
@click.argument("run")
@json_option
@with_store
def show_cmd(run: str, as_json: bool, store) -> None:
    """Show RUN (an id or a uuid prefix): its cards, settings, headline metric, validity and why.

    With --json: the run view of reports.services.describe_run without its charts (run_id, title, run,
    cards, imported), as the app's Runs page and the run report read it.

    \b
    Example:
        infersight show 1
    """
    if as_json:
        view = describe_run(DescribeRunRequest.parse(run=run, charts=False), store)
        emit_json(view.model_dump(mode="json", include={"run_id", "title", "run", "cards", "imported"}))
        return
    render_run(store, store.get_run(run))


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
    problems = check_run(store, record.id)
    if record.status != "complete":
        problems.insert(0, f"status is {record.status}" + (f": {record.error}" if record.error else ""))
    if as_json:
        emit_json({"run": record.id, "complete": not problems, "problems": problems})
    elif problems:
        out.print(f"run {record.id} is not complete:")
        for p in problems:
            out.print(f"  - {p}")
    else:
        out.print(f"run {record.id} is complete: task, model, backend and system cards and the "
                  f"performance and accuracy logs are present and consistent")
    if problems:
        raise click.exceptions.Exit(1)


COMMANDS = [runs_cmd, show_cmd, validate_cmd]
