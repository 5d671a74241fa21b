"""`infersight recommend`: the best option under your constraints, ranked with ties, explained and costed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.markup import escape
from rich.table import Table

from engine.services import CATALOG_RULE, RecommendRequest, RecommendResult, recommend
from infersight.cli._common import emit_json, json_option, out, with_store
from runner.errors import EngineError

__all__ = ["COMMANDS"]

# (flag, engine.constraints.OPTION_BOUNDS keyword, help): the unit is in the name.
_BOUND_OPTIONS = (
    ("--max-p50-ms", "max_p50_ms", "Most p50 latency, ms."),
    ("--max-p90-ms", "max_p90_ms", "Most p90 latency, ms."),
    ("--max-p99-ms", "max_p99_ms", "Most p99 latency, ms."),
    ("--max-ttft-ms", "max_ttft_ms", "Most p99 time to first token, ms."),
    ("--max-tpot-ms", "max_tpot_ms", "Most p99 time per output token, ms."),
    ("--min-throughput", "min_throughput_per_s", "Least throughput per unit, samples/s (QPS in Server)."),
    ("--min-tokens-per-s", "min_tokens_per_s", "Least token throughput per unit, tokens/s."),
    ("--min-accuracy", "min_accuracy", ("Least accuracy in the task's own metric units (76.1 for resnet50's acc "
                                        "in %, 0.98 for digits' top-1 fraction).")),
    ("--min-accuracy-ratio", "min_accuracy_ratio", "Least accuracy as a fraction of the reference (0.99 = 99%)."),
    ("--max-power-w", "max_power_w", "Most power, W (of the whole plan with --target-qps)."),
    ("--max-cost-per-million-usd", "max_cost_per_million_usd", "Most cost per million inferences, USD."),
    ("--max-cost-per-million-tokens-usd", "max_cost_per_million_tokens_usd",
     "Most cost per million generated tokens, USD (generative tasks)."),
    ("--max-cost-per-hour-usd", "max_cost_per_hour_usd", ("Most cost per hour, USD (of the whole plan with "
                                                           "--target-qps).")),
    ("--max-units", "max_units", "Most units in the capacity plan (needs --target-qps)."),
)


def _bound_options(fn):
    """The constraint options, one per OPTION_BOUNDS keyword."""
    for flag, name, text in reversed(_BOUND_OPTIONS):
        fn = click.option(flag, name, type=float, default=None, help=text)(fn)
    return fn


# (args, keywords) of the options that set the load and the prices a plan is costed for, in help order.
_PLAN_OPTIONS = (
    (("--target-qps",), {"type": float, "default": None,
                         "help": "Target load, inferences/s: plan units and cost for it."}),
    (("--headroom",), {"type": float, "default": 0.2, "show_default": True,
                       "help": "Spare capacity above the target load."}),
    (("--n-plus-one/--no-n-plus-one",), {"default": True, "show_default": True,
                                         "help": "Add one spare unit to the plan."}),
    (("--catalog", "catalog_path"), {"type": click.Path(dir_okay=False), "default": None,
                                     "help": f"Price and power catalogue, YAML or CSV ({CATALOG_RULE}; "
                                             f"the app's rule too)."}),
    (("--tariff-usd-per-kwh",), {"type": float, "default": None,
                                 "help": "Electricity price (default: the catalogue's)."}),
)


def _plan_options(fn):
    """--target-qps, --headroom, --n-plus-one, --catalog and --tariff-usd-per-kwh (also `report decision`'s)."""
    for args, kwargs in reversed(_PLAN_OPTIONS):
        fn = click.option(*args, **kwargs)(fn)
    return fn


@click.command("recommend")
@click.option("--task", required=True, help="Task: a local task (digits, charlm) or an MLPerf benchmark (resnet50, "
                                            "bert, llama2-70b, ...).")
@click.option("--scenario", required=True, help="Scenario: single_stream, multi_stream, server, offline, interactive.")
@_bound_options
@click.option("--where", "where", multiple=True, metavar="BOUND",
              help="A bound with its unit, repeatable: 'p99 <= 15 ms', 'throughput >= 2e4 /s', 'power <= 2 kW'.")
@click.option("--objective", default="cost", show_default=True,
              help="cost (per million inferences; per million tokens for a generative task), throughput, throughput_per_usd, throughput_per_watt, latency "
                   "(p99), p50, p90, accuracy, power, ... or a mix: 'mix:cost=0.7,p99=0.3'.")
@_plan_options
@click.option("--utilisation", type=float, default=None, help="Fraction of paid hours serving load (default: the "
                                                              "catalogue's, else 1).")
@click.option("--include-uncertain", is_flag=True, help="Rank candidates whose verdict on some bound is uncertain too.")
@click.option("--pareto", default=None, metavar="X,Y", help="Print the Pareto frontier over two metrics, e.g. "
                                                            "cost,p99 or throughput,power.")
@click.option("--what-if", "what_if", is_flag=True, help="Show how the answer moves with each bound, price, tariff "
                                                         "and the load at -50%, -10%, +10%, +50%.")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="Rows to show per table.")
@json_option
@with_store
def recommend_cmd(task: str, scenario: str, where: tuple[str, ...], objective: str, target_qps: float | None,
                  headroom: float, n_plus_one: bool, catalog_path: str | None, tariff_usd_per_kwh: float | None,
                  utilisation: float | None, include_uncertain: bool, pareto: str | None, what_if: bool, top: int,
                  as_json: bool, store, **bounds: float | None) -> None:
    """Recommend the best system, backend and settings for a task and scenario under your constraints: a ranked
    answer (options that cannot be told apart share a rank), P(meets) per constraint, the binding
    constraint, why each excluded option failed and by how much, a capacity plan, and what-if.

    \b
    Example:
        infersight recommend --task resnet50 --scenario server --max-p99-ms 15 --min-accuracy-ratio 0.99
        infersight recommend --task resnet50 --scenario server --max-p99-ms 15 --target-qps 20000 --what-if
        infersight recommend --task digits --scenario offline --where 'throughput >= 4000 /s' --objective throughput
        infersight recommend --task resnet50 --scenario offline --pareto cost,throughput --json
    """
    result = recommend(_request(task, scenario, where=where, objective=objective, target_qps=target_qps,
                                headroom=headroom, n_plus_one=n_plus_one, catalog=catalog_path,
                                tariff_usd_per_kwh=tariff_usd_per_kwh, utilisation=utilisation,
                                include_uncertain=include_uncertain, pareto=_axes(pareto), what_if=what_if,
                                bounds=bounds), store)
    if as_json:
        emit_json(result.to_dict(limit=top))
        return
    _print(result, top, pareto is not None)


def _request(task: str, scenario: str, *, bounds: dict[str, float | None], **fields: Any) -> RecommendRequest:
    """The RecommendRequest of the command line's options (`recommend` and `report decision` share them)."""
    return RecommendRequest.parse(task=task, scenario=scenario, **fields,
                                  bounds={k: v for k, v in bounds.items() if v is not None})


def _axes(pareto: str | None) -> tuple[str, str] | None:
    if pareto is None:
        return None
    parts = [p.strip() for p in pareto.split(",") if p.strip()]
    if len(parts) != 2:
        raise EngineError(f"--pareto takes two metrics separated by a comma (e.g. cost,p99), not {pareto!r}")
    return parts[0], parts[1]


def _num(value: Any, digits: int = 4) -> str:
    """A figure for a table: thousands separated from 1,000 up, else `digits` significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}g}"


def _with_ci(value: float, lo: float, hi: float) -> str:
    """A figure with its CI where it has one: '0.0095 [0.0044, inf]'."""
    text = _num(value)
    if not (math.isnan(lo) or math.isnan(hi)) and (lo != value or hi != value):
        text += f" [{_num(lo, 3)}, {_num(hi, 3)}]"
    return text


def _runs(row: dict[str, Any]) -> str:
    if row["provenance"] == "imported":
        return f"{row['source']} {row['submitter']}, run {row['run_ids']}"
    return f"measured, run{'s' if row['n_runs'] > 1 else ''} {row['run_ids']}"


def _print(result: RecommendResult, top: int, show_frontier: bool) -> None:
    from engine import METRICS

    rec, catalog = result.recommendation, result.catalog
    task, scenario = result.request.task, result.request.scenario
    count, measured = result.candidates, result.measured
    out.print(escape(f"{task} {scenario}: {count} candidate{'s' if count != 1 else ''} ({measured} measured here, "
                     f"{count - measured} imported from MLPerf); constraints: "
                     f"{', '.join(rec.constraints.texts()) or 'none'}; objective: {rec.objective.text()} "
                     f"({_better(rec.objective)})"))
    if catalog.is_example:
        out.print(f"[yellow]prices: EXAMPLE catalogue {escape(Path(catalog.source).name)}: every figure in it is an "
                  f"example, not a quote; pass --catalog FILE with your own[/]")
    shown = list(dict.fromkeys(METRICS[b.metric].column for b in rec.constraints))
    _ranked_table(rec, shown, top)
    out.print("[bold]Why[/]")
    for number, line in enumerate(rec.explanation.lines):
        style = "bold red" if number == 0 and rec.ranked.empty else "default"
        out.print(f"  [{style}]{escape(line)}[/]")
    if rec.capacity:
        c = rec.capacity
        out.print(f"[bold]Capacity plan[/] for {_num(c['target_load_per_s'])} inferences/s with {c['headroom']:.0%} "
                  f"headroom{' and N+1' if c['n_plus_one'] else ''}: {_num(c['units'])} x {escape(c['candidate'])} "
                  f"at {_num(c['unit_samples_per_s'])} inferences/s per unit "
                  f"(units {_num(c['units_lo'])}..{_num(c['units_hi'])} over the throughput CI), "
                  f"{_num(c['cost_per_hour_usd'])} USD/h, "
                  f"{'rented' if c['purchase_usd'] is None else _num(c['purchase_usd']) + ' USD to buy'}, "
                  f"{_num(c['power_w'])} W")
        if c.get("capacity_basis"):
            out.print(f"  capacity per unit: {escape(c['capacity_basis'])}")
    _excluded_table(rec, top)
    if show_frontier:
        _frontier_table(rec, top)
    if rec.what_if is not None:
        _what_if_table(rec)
    out.print("[bold]Assumptions[/]")
    for line in rec.assumptions:
        out.print(f"  {escape(line)}")


def _better(objective) -> str:
    return "higher is better" if objective.is_mix or objective.metric.better == "higher" else "lower is better"


def _ranked_table(rec, shown: list[str], top: int) -> None:
    ranked = rec.ranked
    if ranked.empty:  # the explanation says so, with the nearest misses
        return
    unit = "score" if rec.objective.is_mix else rec.objective.metric.unit
    own = None if rec.objective.is_mix else rec.objective.metric.column
    figures = [c for c in shown if c != own]
    cost = "cost_per_million_tokens_usd" if ranked["cost_per_million_tokens_usd"].notna().all() else \
        "cost_per_million_usd"
    extra = [c for c in (cost, "units") if c != own and (c != "units" or rec.target_load)]
    table = Table("rank", "candidate", f"{rec.objective.text()} ({unit}) [CI]", "P(all)", *figures, *extra,
                  "source", box=box.SIMPLE_HEAD)
    for row in ranked.head(top).to_dict("records"):
        rank = f"{int(row['rank'])}{'=' if row['tied'] else ''}"
        objective = _with_ci(row["objective"], row["objective_lo"], row["objective_hi"])
        table.add_row(rank, escape(row["candidate"]), objective,
                      f"{row['p_all']:.2f}", *(_with_ci(row[c], row[f"{c}_lo"], row[f"{c}_hi"]) for c in figures),
                      *(_num(row[c]) for c in extra), escape(_runs(row)))
    out.print(f"[bold]Ranked[/] ({len(ranked)}; '=' marks a tie: objective CIs overlap, so the order within a rank "
              f"is not significant)")
    out.print(table)


def _excluded_table(rec, top: int) -> None:
    excluded = rec.excluded
    if excluded.empty:
        return
    out.print(f"[bold]Excluded[/] ({len(excluded)}, nearest first)")
    for row in excluded.head(top).to_dict("records"):
        reasons = "; ".join(rec.why_excluded(row["candidate"]))
        out.print("  " + escape(f"{row['candidate']} ({row['status']}): {reasons} ({_runs(row)})"))
    if len(excluded) > top:
        out.print(f"  ... and {len(excluded) - top} more (--top N shows more, --json lists them)")


def _frontier_table(rec, top: int) -> None:
    from engine import METRICS

    x, y = (METRICS[a] for a in rec.pareto_axes)
    out.print(f"[bold]Pareto frontier[/] of the ranked candidates: {x.label} ({x.better} is better) vs "
              f"{y.label} ({y.better} is better): {len(rec.frontier)} point(s)")
    table = Table("candidate", f"{x.name} ({x.unit})", f"{y.name} ({y.unit})", "rank", box=box.SIMPLE_HEAD)
    for row in rec.frontier.head(top).to_dict("records"):
        table.add_row(escape(row["candidate"]), _num(row[x.column]), _num(row[y.column]), _num(row["rank"]))
    out.print(table)


def _what_if_table(rec) -> None:
    moves = rec.what_if
    changed = moves[moves["winner_changed"]]
    out.print(f"[bold]What-if[/]: {len(moves)} moves (each bound, the leading systems' prices, the tariff and the "
              f"load by -50%, -10%, +10%, +50%); the winner changes in {len(changed)}")
    if changed.empty:
        return
    table = Table("parameter", "change", "value", "winner then", "ranked", box=box.SIMPLE_HEAD)
    for row in changed.to_dict("records"):
        table.add_row(escape(row["parameter"]), row["change"], _num(row["value"]), escape(row["winner"]),
                      str(row["ranked"]))
    out.print(table)


COMMANDS = [recommend_cmd]
