"""`infersight analyze`, `compare`, `repro` and `trend`: the statistics layer (analysis/) on the command line."""

from __future__ import annotations

from typing import Any

import click
from rich import box
from rich.table import Column, Table

from analysis import services
from analysis.repro import DEFAULT_TOLERANCE
from analysis.services import AnalyseRequest, CompareRequest, ReproRequest, TrendRequest
from infersight.cli._common import emit_json, json_option, out, with_store
from infersight.cli._run_options import BarReporter, progress_bar, run_options, run_request
from runner.services import ReplicaReporter, ReplicasRequest, measure_replicas
from runner.store import RunRecord, Store

__all__ = ["COMMANDS"]

_confidence = click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True,
                           help="Confidence level of every interval.")


def _table(*headers: str | Column) -> Table:
    return Table(*headers, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)


def _num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:,.{digits}g}"


def _interval(ci: dict[str, Any] | None) -> str:
    if not ci:
        return "-"
    low = "-inf" if ci.get("low") is None else _num(ci["low"])
    high = "+inf" if ci.get("high") is None else _num(ci["high"])
    return f"[{low}, {high}]"


def _order(key: str) -> float:
    """Percentiles in numeric order, then the mean (stored JSON has its keys sorted as text)."""
    return float(key[1:]) if key.startswith("p") else float("inf")


def _ci_rows(ci: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for block, label in (("latency_ms", "latency"), ("ttft_ms", "TTFT"), ("tpot_ms", "TPOT")):
        figures = {k: v for k, v in (ci.get(block) or {}).items() if k != "independence"}
        rows += [(f"{label} {key} (ms)", figures[key]) for key in sorted(figures, key=_order)]
    for key, value in (ci.get("throughput") or {}).items():
        rows.append((key.replace("_per_second", "/s"), value))
    return rows


def _render_analysis(result: dict[str, Any]) -> None:
    run, ci = result["run"], result["ci"]
    out.print(f"[bold]run {run['id']}[/] {run['uuid']}  {run['task_name']} {run['model_variant']} / "
              f"{run['backend_name']} / {run['scenario']}  status: {run['status']}")
    out.print(f"  configuration {result['config_key']}: {len(result['replicas'])} complete run(s) "
              f"{', '.join(map(str, result['replicas'][:10]))}")
    if run.get("headline_value") is not None:
        h = result["headline_ci"]
        out.print(f"  headline {run['headline_metric']} = {_num(run['headline_value'])} {run['headline_units']}")
        if h:
            out.print(f"    {ci['confidence']:.0%} CI: {_num(h['estimate'])} in {_interval(h)} ({h['method']})"
                      + (f"; {h['note']}" if h.get("note") else ""))
    for note in result["notes"]:
        out.print(f"  {note}")
    if ci is None:
        return
    out.print(f"  within-run intervals ({ci['confidence']:.0%}, {result['ci_source']}): {ci['queries']:,} queries, "
              f"{ci['samples']:,} samples")
    table = _table("figure", "estimate", "interval", "coverage", "method", "note")
    for label, value in _ci_rows(ci):
        cov = "-" if value.get("coverage") is None else f"{value['coverage']:.1%}"
        table.add_row(label, _num(value["estimate"]), _interval(value), cov, value["method"], value.get("note", ""))
    out.print(table)
    indep = (ci.get("latency_ms") or {}).get("independence")
    if indep and indep.get("p_value") is not None:
        verdict = "no autocorrelation found" if indep["independent"] else "AUTOCORRELATED: batch methods used"
        out.print(f"  Ljung-Box over {indep['lags']} lags: Q = {indep['statistic']:.4g}, p = {indep['p_value']:.3g} "
                  f"({verdict})")
    for note in ci.get("notes", []):
        out.print(f"  {note}")


@click.command("analyze")
@click.argument("run")
@_confidence
@click.option("--recompute", is_flag=True, help="Compute the intervals from the performance log even if stored.")
@json_option
@with_store
def analyze_cmd(run: str, confidence: float, recompute: bool, as_json: bool, store) -> None:
    """Confidence intervals of RUN's figures: p50/p90/p99 latency, mean, throughput (and TTFT/TPOT).

    Percentiles get exact order-statistic intervals with their achieved coverage; the mean and
    throughput a BCa bootstrap, or batch means when samples are autocorrelated (Ljung-Box). Runs
    store their intervals when they finish; older runs are analysed from their performance log.

    \b
    Example:
        infersight analyze 1
        infersight analyze 1 --confidence 0.99 --json
    """
    result = services.analyse(AnalyseRequest.parse(run=run, confidence=confidence, recompute=recompute), store)
    if as_json:
        emit_json(result.to_dict())
    else:
        _render_analysis(result.to_dict())


def _render_comparison(result: dict[str, Any]) -> None:
    direction = "lower" if result["lower_is_better"] else "higher"
    base = result["baseline"]
    out.print(f"[bold]{result['metric']}[/] ({direction} is better), {result['unit']} as the unit, "
              f"{result['confidence']:.0%} intervals, equivalence margin +-{result['margin']:.1%}")
    out.print(f"  baseline {base['ref']}: runs {', '.join(map(str, base['runs']))}, {len(base['values'])} figures")
    table = _table("vs baseline", "runs", "n", "ratio of gmeans", "interval", "ratio of medians", "interval",
                   "Welch p", "Mann-Whitney p", "TOST p", "BH q", "verdict")
    for c in result["comparisons"]:
        gm, md = c["ratio_geometric_means"], c["ratio_medians"]
        table.add_row(c["ref"], ", ".join(map(str, c["runs"][:6])), str(c["n_b"]), _num(gm["estimate"]),
                      _interval(gm), _num(md["estimate"]), _interval(md), _num(c["welch_p"], 3),
                      _num(c["mann_whitney_p"], 3), _num(c["tost_p"], 3), _num(c["q_value"], 3), c["verdict_text"])
    out.print(table)
    for warning in result["warnings"]:
        out.print(f"  [yellow]warning:[/] {warning}")


@click.command("compare")
@click.argument("refs", nargs=-1, required=True, metavar="BASELINE OTHER...")
@click.option("--metric", default=None, help="Figure to compare (default: the baseline's headline metric), "
                                             "e.g. latency_p99_ms, samples_per_second.")
@click.option("--margin", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.02,
              show_default=True, help="Equivalence margin as a fraction: ratios within 1 +- margin are 'no change'.")
@_confidence
@click.option("--force", is_flag=True, help="Compare even when task version or model hash differ.")
@json_option
@with_store
def compare_cmd(refs: tuple[str, ...], metric: str | None, margin: float, confidence: float, force: bool,
                as_json: bool, store) -> None:
    """Compare runs or configurations: BASELINE against each OTHER (a run id/uuid, or config:KEY).

    Run-level figures (2+ runs a side; else batches within each run, with a warning): ratios of
    geometric means and of medians with intervals, Welch t on logs, Mann-Whitney U, a TOST
    equivalence test against the margin, and Benjamini-Hochberg q-values across the OTHERs.
    Verdict: equivalent, different (better/worse) or inconclusive. Runs whose task version or
    model hash differ are refused unless --force.

    \b
    Example:
        infersight compare 3 7
        infersight compare config:90c624e9 config:1f3a77c2 --margin 0.05
    """
    if len(refs) < 2:
        raise click.UsageError("compare needs a BASELINE and at least one OTHER")
    request = CompareRequest.parse(refs=refs, metric=metric, margin=margin, confidence=confidence, force=force)
    result = services.compare(request, store).to_dict()
    if as_json:
        emit_json(result)
    else:
        _render_comparison(result)


def _render_repro(r: dict[str, Any]) -> None:
    figures = ", ".join(_num(v) for v in r["run_figures"])
    out.print(f"[bold]configuration {r['config_key']}[/]: {len(r['run_ids'])} runs "
              f"({', '.join(map(str, r['run_ids'][:12]))}), {r['metric']}: {figures} {r.get('units') or ''}")
    out.print(f"  {r['verdict']}")
    needed = r["runs_needed"] if r["runs_needed"] is not None else "more than 10,000"
    out.print(f"  run-to-run CV {r['cv']:.2%}; runs needed for a {r['confidence']:.0%} interval of "
              f"+-{r['target_half_width']:.1%}: {needed}")
    comps = r.get("components")
    if comps:
        total = sum(comps["components"].values()) or 1.0
        parts = ", ".join(f"{k} {v:.3g} ({v / total:.0%})" for k, v in comps["components"].items())
        out.print(f"  variance components (REML, {r['scale']} scale): {parts}")
        icc = r["icc_ci"]
        out.print(f"  ICC {r['icc']:.3f} [{icc['low']:.3f}, {icc['high']:.3f}]; CV between runs {r['cv_between']:.2%}, "
                  f"within runs (per batch) {r['cv_within']:.2%}")
        for note in comps.get("notes", []):
            out.print(f"    note: {note}")
    out.print(f"  outlier runs (generalised ESD): {', '.join(r['outliers']) or 'none'}")
    for note in r["notes"]:
        out.print(f"  {note}")


def _measure_replicas(task: str, n: int, opts: dict[str, Any], store: Store) -> list[RunRecord]:
    request = ReplicasRequest.parse(run=run_request(task, **opts), replicas=n)
    with progress_bar() as bar:
        return list(measure_replicas(request, store, _ReplicaBar(bar)).runs)


class _ReplicaBar(BarReporter, ReplicaReporter):
    """Each replica's phases on the bar, and a line per replica measured."""

    def replica_done(self, index: int, total: int, run: RunRecord) -> None:
        self.done()
        self.progress.console.print(f"replica {index}/{total}: run {run.id}")


@click.command("repro")
@click.argument("task", required=False)
@click.option("--config", "config_run", default=None, metavar="RUN",
              help="Analyse the stored replicas of RUN's configuration instead of measuring new ones.")
@click.option("-n", "--replicas", type=click.IntRange(2, 100), default=3, show_default=True,
              help="Replica runs to measure (same settings).")
@run_options(extras=False)
@click.option("--metric", default=None, help="Figure to analyse (default: the headline metric).")
@click.option("--tolerance", type=click.FloatRange(0.0, 1.0, min_open=True), default=DEFAULT_TOLERANCE,
              show_default=True, help="Verdict: every run within +-tolerance of the median (MLPerf audits: 2%).")
@_confidence
@json_option
@with_store
def repro_cmd(task: str | None, config_run: str | None, replicas: int, metric: str | None, tolerance: float,
              confidence: float, as_json: bool, store, **opts: Any) -> None:
    """Reproducibility: measure N replicas of TASK (or take RUN's stored replicas) and analyse them.

    REML variance components (between hosts, days and runs vs within runs), ICC with its
    interval, CVs, the runs needed for an interval of +-tolerance/2, outlier runs (generalised
    ESD), and a verdict against the tolerance.

    \b
    Example:
        infersight repro digits --scenario single_stream --quick -n 3
        infersight repro --config 12 --json
    """
    if (task is None) == (config_run is None):
        raise click.UsageError("give a TASK to measure replicas of, or --config RUN to analyse stored ones")
    kwargs = {"metric": metric, "tolerance": tolerance, "confidence": confidence}
    if config_run is not None:
        request = ReproRequest.parse(run=config_run, **kwargs)
    else:
        measured = _measure_replicas(task, replicas, opts, store)
        request = ReproRequest.parse(runs=[r.id for r in measured], **kwargs)
    result = services.reproducibility(request, store).to_dict()
    if as_json:
        emit_json(result)
    else:
        _render_repro(result)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _values(g: dict[str, Any]) -> str:
    """The geometric mean of the latest period: '1,300 in 2026Q4'."""
    periods = [p for p in g["periods"] if p.get("gmean") is not None]
    if not periods:
        return "-"
    def one(p: dict[str, Any]) -> str:
        value = p["gmean"]
        return f"{value:,.0f} in {p['period']}" if abs(value) >= 1000 else f"{value:.4g} in {p['period']}"
    return one(periods[-1])


def _trend_row(g: dict[str, Any]) -> list[str]:
    key = g["group"]
    ts, mk = g.get("theil_sen"), g.get("mann_kendall")
    slope = f"{_pct(ts['change_per_period'])} [{_pct(ts['change_low'])}, {_pct(ts['change_high'])}]" if ts else "-"
    test = f"{mk['trend']} (p {mk['p_value']:.2g})" if mk else "-"
    last = g["period_changes"][-1] if g["period_changes"] else None
    change = "-" if last is None else f"{_pct(last['ratio'] - 1)} " + (
        f"[{_pct(last['low'] - 1)}, {_pct(last['high'] - 1)}]" if last.get("low") is not None else "(no CI)")
    cps = ", ".join(f"after run {c['after_run']}" for c in g["change_points"] if c["confirmed"]) or "-"
    system = key.get("system", "") + (f" [{key['division']}]" if key.get("division") else "")
    return [f"{key.get('task')}/{key.get('model_variant')}", key.get("scenario", ""), system,
            key.get("backend", "-"), str(key.get("metric")), f"{_values(g)} ({len(g['periods'])}/{g['runs']})", slope,
            test, change, cps, ", ".join(map(str, g["outlier_runs"])) or "-"]


@click.command("trend")
@click.option("--by", default="quarter", show_default=True,
              help="Period: quarter, month, year, week, day, or round (MLPerf rounds; imported results only).")
@click.option("--task", default=None, help="Only runs of this task.")
@click.option("--scenario", default=None, help="Only runs of this scenario.")
@click.option("--backend", default=None, help="Only runs on this backend.")
@click.option("--source", type=click.Choice(["mlperf", "measured"]), default=None, help="Only imported or measured runs.")
@_confidence
@json_option
@with_store
def trend_cmd(by: str, task: str | None, scenario: str | None, backend: str | None, source: str | None,
              confidence: float, as_json: bool, store) -> None:
    """Trends of headline figures by period, per task / variant / scenario / system / backend.

    Results imported from MLPerf are grouped by what makes them comparable (accelerator model and count
    per node or host CPU, nodes, division), dated by their round's publication; --by round takes the
    rounds as periods. --task llama2-70b and --task mlperf-llama2-70b mean the same.

    Theil-Sen slope per period with its interval, Mann-Kendall test, OLS with Newey-West errors
    under serial correlation (in --json), the last period-over-period change with its interval,
    confirmed change points and outlier runs (flagged, never dropped).

    \b
    Example:
        infersight trend --by quarter --task digits
        infersight trend --source mlperf --json
        infersight trend --source mlperf --by round --task llama2-70b
    """
    request = TrendRequest.parse(by=by, task=task, scenario=scenario, backend=backend, source=source,
                                 confidence=confidence)
    result = services.trend(request, store).to_dict()
    if as_json:
        emit_json(result)
        return
    table = _table("task", "scenario", "system", "backend", "metric", "latest (periods/runs)",
                   Column("change per period", min_width=17), "Mann-Kendall", "last change", "change points",
                   "outlier runs")
    for group in result["groups"]:
        table.add_row(*_trend_row(group))
    out.print(f"[bold]trends by {result['by']}[/] over {result['runs']} runs "
              f"({result['excluded_runs']} without a headline figure left out)")
    out.print(table)


COMMANDS = [analyze_cmd, compare_cmd, repro_cmd, trend_cmd]
