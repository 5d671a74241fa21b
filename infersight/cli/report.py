"""`infersight report run` and `infersight badge`: results leave the tool as HTML reports and SVG badges."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from infersight.cli._common import emit_json, json_option, out, with_store
from reports.badges import BADGE_KINDS, run_badge

__all__ = ["COMMANDS"]


@click.group("report")
def report_group() -> None:
    """Write self-contained HTML reports (they open and print with no network).

    \b
    Example:
        infersight report run 1 --out run-1.html
    """


@report_group.command("run")
@click.argument("run")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="HTML file to write (default: run-<id>.html in the current folder).")
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
    from reports.run import render_run_report

    record = store.get_run(run)
    started = time.perf_counter()
    html = render_run_report(store, record["id"])
    path = Path(out_path or f"run-{record['id']}.html")
    path.write_text(html, encoding="utf-8")
    size, seconds = path.stat().st_size, time.perf_counter() - started
    if as_json:
        emit_json({"run": record["id"], "out": str(path), "bytes": size, "seconds": round(seconds, 3)})
    else:
        out.print(f"wrote {path} ({size / 1e6:.2f} MB) for run {record['id']} in {seconds:.1f} s")


@click.command("badge")
@click.argument("run")
@click.option("--kind", type=click.Choice(BADGE_KINDS), default="validity", show_default=True,
              help="validity: VALID/INVALID with the headline; accuracy: meets its target, with the value; "
                   "reproducible: from a reproducibility verdict (none exists until the statistics layer does).")
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
    """
    badge = run_badge(store.get_run(run), kind)
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
