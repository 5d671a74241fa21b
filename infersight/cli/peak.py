"""`infersight peak`: search a server configuration's highest target QPS that stays VALID."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click
from rich import box
from rich.table import Table

from infersight.cli._common import emit_json, json_option, out, with_store
from infersight.cli._run_options import BarReporter, progress_bar, run_options, run_request
from runner.peak import Probe, SearchReporter
from runner.services import PeakSearchRecord, PeakSearchRequest, PeakSettings, search_peak
from runner.store import Store

__all__ = ["COMMANDS", "render_search"]

_FIELDS = PeakSettings.model_fields


def _search_option(name: str, field: str, kind: type) -> Any:
    """A search option with its default and help from PeakSettings (the one place that defines them)."""
    return click.option(name, field, type=kind, default=_FIELDS[field].default, show_default=True,
                        help=_FIELDS[field].description)


class SearchBar(BarReporter, SearchReporter):
    """One progress bar for the probe being run, and a line per finished probe."""

    def phase(self, text: str) -> None:
        self.progress.start()
        if self.task is None:
            self.task = self.progress.add_task(text, total=1.0, info="")
        else:
            self.progress.reset(self.task, description=text, info="")

    def probe_done(self, probe: Probe, result: dict[str, Any]) -> None:
        self.progress.console.print(f"probe {len(result['probes'])}: {_probe_line(asdict(probe))}")


def _probe_line(p: dict[str, Any]) -> str:
    figures = [f"p99 {p['latency_ms']:.4g} ms" if p.get("latency_ms") is not None else None,
               f"{p['over_bound']:,} over bound" if p.get("over_bound") is not None else None,
               f"achieved {p['achieved_qps']:,.0f} QPS" if p.get("achieved_qps") is not None else None]
    verdict = "LOADGEN LIMIT (inconclusive)" if p.get("inconclusive") else ("VALID" if p["valid"] else "INVALID")
    return (f"target {p['target_qps']:,.6g} QPS {verdict} (run {p['run_id']}; "
            + ", ".join(f for f in figures if f) + ")")


@click.command("peak")
@click.argument("task")
@run_options(scenario=False)
@_search_option("--start-qps", "start_qps", float)
@_search_option("--repeats-near-edge", "repeats_near_edge", int)
@_search_option("--valid-threshold", "valid_threshold", float)
@_search_option("--tolerance", "tolerance", float)
@_search_option("--min-qps", "min_qps", float)
@_search_option("--max-qps", "max_qps", float)
@json_option
@with_store
def peak_cmd(task: str, start_qps: float | None, repeats_near_edge: int, valid_threshold: float, tolerance: float,
             min_qps: float, max_qps: float, as_json: bool, store: Store, **options: Any) -> None:
    """Search the highest target QPS at which TASK's server scenario stays VALID on a backend: bracket
    (double or halve), bisect to the tolerance, repeat runs near the knee and record P(VALID) per QPS
    tried. Every probe is a stored run linked to the search (`infersight show` names it); --quick probes
    make the search non-compliant.

    \b
    Example:
        infersight peak digits --quick
        infersight peak digits --backend openvino --threads 2 --start-qps 2000 --repeats-near-edge 3
        infersight peak digits --quick --min-qps 500 --max-qps 8000 --json
    """
    search = dict(start_qps=start_qps, repeats_near_edge=repeats_near_edge, valid_threshold=valid_threshold,
                  tolerance=tolerance, min_qps=min_qps, max_qps=max_qps)
    request = PeakSearchRequest.parse(run=run_request(task, scenario="server", **options), search=search)
    with progress_bar() as bar:
        found = search_peak(request, store, SearchBar(bar))
    if as_json:
        emit_json(found.to_dict())
    else:
        render_search(found)


def render_search(search: PeakSearchRecord) -> None:
    """Print a peak search: its P(VALID) table, its probes and the peak."""
    result = search.result or {}
    table = Table("target QPS", "runs", "VALID", "P(VALID)", "loadgen limits", "probe runs", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for row in result.get("table", []):
        ids = [str(p["run_id"]) for p in result["probes"] if p["target_qps"] == row["target_qps"]]
        p_valid = "-" if row.get("p_valid") is None else f"{row['p_valid']:.2f}"
        table.add_row(f"{row['target_qps']:,.6g}", str(row["runs"]), str(row["valid"]), p_valid,
                      str(row.get("loadgen_limits", 0)), ", ".join(ids))
    out.print(table)
    peak = search.peak_qps
    compliance = "" if result.get("compliant") else " (non-compliant: quick or lowered minimums)"
    out.print(f"peak search {search.id} {search.status}: peak target QPS "
              f"{'none found' if peak is None else f'{peak:,.6g}'}{compliance}; bracket "
              + " .. ".join("-" if q is None else f"{q:,.6g}" for q in result.get("bracket", [None, None])))
    if result.get("knee_flips"):
        out.print("  the knee flips: P(VALID) strictly between 0 and 1 at "
                  + ", ".join(f"{q:,.6g}" for q in result["flipping_qps"]) + " QPS")
    if result.get("note"):
        out.print(f"  note: {result['note']}")


COMMANDS = [peak_cmd]
