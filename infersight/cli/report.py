"""`infersight report run|compare|decision|trend` and `infersight badge`: results leave the tool as
self-contained HTML reports and SVG badges."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from analysis.services import CompareRequest
from infersight.cli._common import emit_json, json_option, out, with_store
from infersight.cli.recommend import _axes, _bound_options, _plan_options, _request
from reports.badges import BADGE_KINDS, reproducibility_verdict, run_badge
from reports.services import (CompareReportRequest, DecisionReportRequest, ReportRequest, RoundsReportRequest,
                             RunReportRequest, TrendReportRequest, render_report)

__all__ = ["COMMANDS"]


def _out_option(default: str) -> Callable:
    return click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), default=None,
                        help=f"HTML file to write (default: {default} in the current folder).")


_note_option = click.option("--note", default="", metavar="TEXT",
                            help="A note shown at the top of the report (a purchase request number, who asked, why).")
_confidence_option = click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True,
                                  help="Confidence level of every interval.")


def _write(request: ReportRequest, store: Any, out_path: str | None, as_json: bool) -> None:
    """Render a report (reports.services.render_report), write it, and say where (and how big, how long) or
    print it as JSON."""
    started = time.perf_counter()
    report = render_report(request, store)
    path, extra = Path(out_path or report.file_name), report.about
    try:
        path.write_text(report.html, encoding="utf-8")
    except OSError as exc:
        raise click.BadParameter(f"{path}: cannot write: {exc.strerror or exc}", param_hint="--out") from None
    size, seconds = path.stat().st_size, time.perf_counter() - started
    if as_json:
        emit_json({**extra, "out": str(path), "bytes": size, "seconds": round(seconds, 3)})
    else:
        what = ", ".join(f"{k} {v}" for k, v in extra.items())
        out.print(f"wrote {path} ({size / 1e6:.2f} MB) for {what} in {seconds:.1f} s")


@click.group("report")
def report_group() -> None:
    """Write self-contained HTML reports (they open and print with no network): a run, a comparison,
    a decision, a quarter's trends.

    \b
    Example:
        infersight report run 1 --out run-1.html
        infersight report compare 3 7 --out compare.html
        infersight report decision --task resnet50 --scenario server --max-p99-ms 15 --out decision.html
        infersight report trend --quarter 2026Q3 --out trends.html
    """


@report_group.command("run")
@click.argument("run")
@_out_option("run-<id>.html")
@json_option
@with_store
def run_report_cmd(run: str, out_path: str | None, as_json: bool, store) -> None:
    """Write the report of RUN (an id or a uuid prefix): cards, settings and seeds, validity and why,
    headline, latency and throughput charts, accuracy against target.

    \b
    Example:
        infersight report run 1 --out run-1.html
        infersight report run 3f2a --out report.html --db results.db
    """
    _write(RunReportRequest.parse(run=run), store, out_path, as_json)


@report_group.command("compare")
@click.argument("refs", nargs=-1, required=True, metavar="BASELINE OTHER...")
@click.option("--metric", default=None, help="Figure to compare (default: the baseline's headline metric).")
@click.option("--margin", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.02,
              show_default=True, help="Equivalence margin as a fraction: ratios within 1 +- margin are 'no change'.")
@_confidence_option
@click.option("--force", is_flag=True, help="Compare even when task version or model hash differ.")
@_note_option
@_out_option("compare.html")
@json_option
@with_store
def compare_report_cmd(refs: tuple[str, ...], metric: str | None, margin: float, confidence: float, force: bool,
                       note: str, out_path: str | None, as_json: bool, store) -> None:
    """Write the comparison of BASELINE with each OTHER (a run id or uuid prefix, or config:KEY for every
    run of a configuration): the figures of `infersight compare` (ratios with intervals, Welch,
    Mann-Whitney, TOST equivalence, Benjamini-Hochberg, verdicts) and the latency CDFs overlaid.

    \b
    Example:
        infersight report compare 3 7 --out compare.html
        infersight report compare config:90c624e9 config:1f3a77c2 --margin 0.05 --note "threads 1 vs 2"
    """
    if len(refs) < 2:
        raise click.UsageError("compare needs a BASELINE and at least one OTHER")
    comparison = CompareRequest.parse(refs=refs, metric=metric, margin=margin, confidence=confidence, force=force)
    _write(CompareReportRequest.parse(comparison=comparison, note=note), store, out_path, as_json)


@report_group.command("decision")
@click.option("--task", required=True,
              help="Task: a local task (digits, charlm) or an MLPerf benchmark (resnet50, ...).")
@click.option("--scenario", required=True, help="Scenario: single_stream, multi_stream, server, offline, interactive.")
@_bound_options
@click.option("--where", "where", multiple=True, metavar="BOUND",
              help="A bound with its unit, repeatable: 'p99 <= 15 ms', 'throughput >= 2e4 /s'.")
@click.option("--objective", default="cost", show_default=True,
              help="cost, throughput, throughput_per_usd, throughput_per_watt, latency, ... or 'mix:cost=0.7,p99=0.3'.")
@_plan_options
@click.option("--utilisation", type=float, default=None, help="Fraction of paid hours serving load.")
@click.option("--include-uncertain", is_flag=True, help="Rank candidates whose verdict on some bound is uncertain too.")
@click.option("--pareto", default=None, metavar="X,Y", help="The Pareto chart's two metrics, e.g. cost,p99.")
@click.option("--what-if/--no-what-if", "what_if", default=True, show_default=True,
              help="Include how the answer moves with each bound, price, tariff and the load.")
@_note_option
@_out_option("decision-<task>-<scenario>.html")
@json_option
@with_store
def decision_report_cmd(task: str, scenario: str, where: tuple[str, ...], objective: str, target_qps: float | None,
                        headroom: float, n_plus_one: bool, catalog_path: str | None, tariff_usd_per_kwh: float | None,
                        utilisation: float | None, include_uncertain: bool, pareto: str | None, what_if: bool,
                        note: str, out_path: str | None, as_json: bool, store, **bounds: float | None) -> None:
    """Write the decision report for TASK under SCENARIO and your constraints: the question, the ranked
    answer with ties and probabilities, the Pareto chart, why every excluded option failed, the cost
    and capacity plan, what-if, and where every figure comes from (runs, MLPerf submitter and round).
    It takes `infersight recommend`'s options and is the same recommendation.

    \b
    Example:
        infersight report decision --task resnet50 --scenario server --max-p99-ms 15 --min-accuracy-ratio 0.99 \\
            --objective cost --target-qps 20000 --out decision.html
        infersight report decision --task digits --scenario offline --where 'throughput >= 1000 /s' \\
            --objective throughput --note "PO 4711"
    """
    question = _request(task, scenario, where=where, objective=objective, target_qps=target_qps, headroom=headroom,
                        n_plus_one=n_plus_one, catalog=catalog_path, tariff_usd_per_kwh=tariff_usd_per_kwh,
                        utilisation=utilisation, include_uncertain=include_uncertain, pareto=_axes(pareto),
                        what_if=what_if, bounds=bounds)
    _write(DecisionReportRequest.parse(question=question, note=note), store, out_path, as_json)


@report_group.command("trend")
@click.option("--quarter", default=None, metavar="YEARQn", help="The quarter to report on, e.g. 2026Q3.")
@click.option("--source", type=click.Choice(["mlperf"]), default=None,
              help="mlperf: the round-over-round report of imported MLPerf results instead of a quarter's.")
@click.option("--task", default=None, help="Only runs of this task.")
@click.option("--scenario", default=None, help="Only runs of this scenario.")
@_confidence_option
@click.option("--top", type=click.IntRange(1, 30), default=8, show_default=True,
              help="Series drawn per chart (every series stays in the tables).")
@_note_option
@_out_option("trends-<quarter>.html")
@json_option
@with_store
def trend_report_cmd(quarter: str | None, source: str | None, task: str | None, scenario: str | None,
                     confidence: float, top: int, note: str, out_path: str | None, as_json: bool, store) -> None:
    """Write the quarterly trend report: per task and scenario, quarterly figures with intervals over the
    history up to the quarter, change points, quarter-over-quarter changes with intervals, the
    leaderboard of systems and backends, the reproducibility of each configuration, and a summary.

    With --source mlperf: the round-over-round report of the imported MLPerf results instead: per
    benchmark, scenario and accelerator the figure of each round and the change with its interval,
    the leader of each round, and the new entrants of the latest round.

    \b
    Example:
        infersight report trend --quarter 2026Q3 --out trends-2026Q3.html
        infersight report trend --quarter 2026Q3 --task digits --scenario offline
        infersight report trend --source mlperf --task llama2-70b --out mlperf-rounds.html
    """
    if source == "mlperf":
        if quarter is not None:
            raise click.UsageError("--source mlperf reports round over round: leave out --quarter")
        request = RoundsReportRequest.parse(task=task, scenario=scenario, confidence=confidence, note=note)
    elif quarter is None:
        raise click.UsageError("give --quarter YEARQn (or --source mlperf for the MLPerf round report)")
    else:
        request = TrendReportRequest.parse(quarter=quarter, task=task, scenario=scenario, confidence=confidence,
                                           top=top, note=note)
    _write(request, store, out_path, as_json)


@click.command("badge")
@click.argument("run")
@click.option("--kind", type=click.Choice(BADGE_KINDS), default="validity", show_default=True,
              help="validity: VALID/INVALID with the headline; accuracy: meets its target, with the value; "
                   "reproducible: every replica of the run's configuration within 2% of their median (needs 2+ "
                   "complete runs of it).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="SVG file to write (default: print the SVG).")
@json_option
@with_store
def badge_cmd(run: str, kind: str, out_path: str | None, as_json: bool, store) -> None:
    """Write a shields-style SVG badge for RUN.

    \b
    Example:
        infersight badge 1 --out badge.svg
        infersight badge 1 --kind accuracy --out accuracy.svg
        infersight badge 12 --kind reproducible --out reproducible.svg
    """
    record = store.get_run(run)
    verdict = reproducibility_verdict(store, record) if kind == "reproducible" else None
    badge = run_badge(record, kind, verdict)
    svg = badge.svg()
    if out_path:
        Path(out_path).write_text(svg, encoding="utf-8")
    if as_json:
        emit_json({"kind": kind, "label": badge.label, "message": badge.message, "color": badge.color,
                   "out": out_path, **({} if out_path else {"svg": svg})})
    elif out_path:
        out.print(f"wrote {out_path}: {badge.label} | {badge.message}")
    else:
        sys.stdout.write(svg)


COMMANDS = [report_group, badge_cmd]
