"""`infersight import mlperf|bundle PATH` and `infersight export mlperf|bundle ...`: outside formats both ways."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from infersight.cli._common import emit_json, err, json_option, out, with_store
from runner.bundles import export_bundle, import_bundle
from reports.export import queries_table, runs_table, write_table
from runner.exporters.mlperf import export_run
from runner.importers import ImportReport, import_tree

__all__ = ["COMMANDS"]


@click.group("import")
def import_group() -> None:
    """Import results measured elsewhere (MLPerf Inference submissions, run bundles of another machine).

    \b
    Example:
        infersight import mlperf ../shared/data/mlperf/v4.1
        infersight runs --source mlperf
        infersight import bundle machine-b.zip
    """


@import_group.command("mlperf")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--round", "round_name", default=None, metavar="vX.Y",
              help="MLPerf round (default: the folder name, e.g. v4.1); known: the tables in "
                   "runner/importers/mlperf/rules/.")
@json_option
@with_store
def mlperf_cmd(paths: tuple[str, ...], round_name: str | None, as_json: bool, store) -> None:
    """Import MLPerf Inference submission trees at PATHS (each a round, division or submitter folder).

    Each result becomes a run with its four cards, headline, validity, percentiles, early-stopping
    estimates, effective settings and seeds, compliance verdicts and power figures, judged by its
    round's rules table (v4.0, v4.1, v5.0, v5.1). Importing the same tree again adds nothing; files
    that cannot be read are listed with the reason. --json prints one report per PATH (a list when
    there are several).

    \b
    Example:
        infersight import mlperf ../shared/data/mlperf/v4.1 ../shared/data/mlperf/v5.1
        infersight import mlperf ../shared/data/mlperf/v4.1/closed/NVIDIA --json
    """
    reports = [_import_one(store, path, round_name) for path in paths]
    if as_json:
        emit_json(reports[0].to_dict() if len(reports) == 1 else [r.to_dict() for r in reports])
        return
    for report in reports:
        _print_report(report, store.url)


def _import_one(store, path: str, round_name: str | None) -> ImportReport:
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("import", total=None, info="")

        def progress(done: int, total: int, current: str) -> None:
            bar.update(task, completed=done, total=total, info=current)

        return import_tree(store, path, round_name, progress)


def _print_report(report: ImportReport, url: str) -> None:
    out.print(f"MLPerf {report.round} from {report.root}: {report.results_found} results found")
    partly = len(report.skipped) - report.results_skipped
    out.print(f"imported {report.imported}, already present {report.already_present}, "
              f"skipped {len(report.skipped)} ({report.results_skipped} results not imported, "
              f"{partly} files left out of imported results)")
    for item in report.skipped:
        out.print(f"  skipped {item.file}: {item.reason}")
    if report.imported:
        out.print(f"stored in {url}; list them with: infersight runs --source mlperf")


@click.group("export")
def export_group() -> None:
    """Export runs: as a table (CSV, Parquet, JSON), a run's per-query log (Parquet), MLPerf LoadGen logs, or run
    bundles for another machine's store.

    \b
    Example:
        infersight export runs --format csv --out runs.csv --task digits
        infersight export queries 1 --out run-1-queries.parquet
        infersight export mlperf 1 submission/
        infersight export bundle 1 2 --out machine-a.zip
    """


@export_group.command("runs")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "json"]), default="csv", show_default=True,
              help="File format.")
@click.option("--out", "path", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--task", default=None, help="Only runs of this task (resnet50 and mlperf-resnet50 mean the same).")
@click.option("--backend", default=None, help="Only runs on this backend.")
@click.option("--scenario", default=None, help="Only runs of this scenario.")
@click.option("--status", default=None, type=click.Choice(["running", "complete", "failed", "aborted"]))
@click.option("--source", default=None, type=click.Choice(["mlperf", "measured"]),
              help="Only runs imported from MLPerf results, or measured here.")
@with_store
def export_runs_cmd(fmt: str, path: str, task, backend, scenario, status, source, store) -> None:
    """Write the runs matching the filters as one table: identity, cores, key settings, dates, quick and
    compliant flags, validity, headline, accuracy, latency and throughput, MLPerf provenance.

    \b
    Example:
        infersight export runs --format parquet --out runs.parquet --scenario server
    """
    frame = runs_table(store, task, backend=backend, scenario=scenario, status=status, source=source)
    out.print(f"wrote {len(frame)} runs to {write_table(frame, path, fmt)}")


@export_group.command("queries")
@click.argument("run")
@click.option("--out", "path", required=True, type=click.Path(dir_okay=False), help="Parquet file to write.")
@with_store
def export_queries_cmd(run: str, path: str, store) -> None:
    """Write RUN's per-query log as Parquet: one row per query (issued, scheduled and completed ns,
    latency in ms, and the optional per-query columns).

    \b
    Example:
        infersight export queries 1 --out run-1-queries.parquet
    """
    frame = queries_table(store, run)
    out.print(f"wrote {len(frame):,} queries of run {frame['run_id'].iloc[0]} to {write_table(frame, path, 'parquet')}")


@export_group.command("mlperf")
@click.argument("run")
@click.argument("directory", type=click.Path(file_okay=False))
@json_option
@with_store
def export_mlperf_cmd(run: str, directory: str, as_json: bool, store) -> None:
    """Write RUN as mlperf_log_summary.txt and mlperf_log_detail.txt in LoadGen's layout under DIRECTORY.

    The tree is open/infersight/{systems,results/<system>/<model>/<Scenario>/performance/run_1,
    .../accuracy}; figures are recomputed from the per-query records with LoadGen's conventions.

    \b
    Example:
        infersight export mlperf 1 submission/
    """
    folder = export_run(store, run, Path(directory))
    if as_json:
        emit_json({"run": store.get_run(run).id, "folder": str(folder),
                   "files": sorted(str(p) for p in folder.iterdir())})
    else:
        out.print(f"wrote {folder}/mlperf_log_summary.txt and mlperf_log_detail.txt")


@import_group.command("bundle")
@click.argument("path", type=click.Path())
@json_option
@with_store
def import_bundle_cmd(path: str, as_json: bool, store) -> None:
    """Import the run bundle at PATH (a folder, .zip, .tar or .tar.gz made by `infersight export bundle`).

    The bundle is checked whole before anything is stored: every file against the manifest's sha256,
    every card against the hash its run names, the per-query and accuracy record counts, the format
    version; a bad bundle stores nothing (exit 2). Each run keeps its uuid, host and system card, so
    `compare`, `repro` and `recommend` see the other machine as another system (or another host of the
    same one). Importing the same runs again stores nothing twice.

    \b
    Example:
        infersight import bundle machine-b.zip
        infersight compare 1 <uuid of machine B's run>
    """
    result = import_bundle(store, Path(path))
    if as_json:
        emit_json(result.to_dict())
        return
    out.print(f"run bundle {result.bundle_sha256[:12]} from {result.hostname}: imported {len(result.imported)} "
              f"run(s) ({result.records:,} per-query records), already present {len(result.already_present)}")
    for run_id in result.imported:
        run = store.get_run(run_id)
        out.print(f"  run {run_id} ({run.uuid[:8]}): {run.task_name} {run.model_variant} "
                  f"{run.backend_name} {run.scenario} measured on {run.hostname}")


@export_group.command("bundle")
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", "out_path", required=True, type=click.Path(),
              help="Where to write: a new folder, or an archive named *.zip, *.tar or *.tar.gz.")
@json_option
@with_store
def export_bundle_cmd(runs: tuple[str, ...], out_path: str, as_json: bool, store) -> None:
    """Write RUNS (ids, uuids or prefixes) with their four cards and two logs as one run bundle.

    The bundle holds each run's task, model, backend and system cards, its performance log (per-query
    records, settings, summary, validity) and its accuracy log, with a manifest of sha256 sums;
    `infersight import bundle` reads it on another machine.

    \b
    Example:
        infersight export bundle 3 4 --out machine-a.zip
    """
    result = export_bundle(store, list(runs), Path(out_path))
    if as_json:
        emit_json(result.to_dict())
    else:
        out.print(f"wrote {result.path} ({result.kind}): {len(result.runs)} run(s), {result.records:,} per-query "
                  f"records, bundle sha256 {result.bundle_sha256[:12]}")


COMMANDS = [import_group, export_group]
