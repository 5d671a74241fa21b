"""The thin layer that reads the store for the statistics: run frames, configurations, records, CIs.

A configuration is the set of runs with the same four card hashes (task, model, backend, system),
scenario and requested settings: `config_key` hashes exactly those, so two runs with the same key
are replicas (DESIGN.md section 2).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from analysis import samples as S
from analysis._checks import names
from analysis.ci import CI_VERSION, run_cis
from runner.errors import AnalysisError
from runner.store import RunRecord, Store
from runner.store.schema import canonical_json

__all__ = ["config_key", "runs_frame", "run_figure", "config_runs", "resolve_side", "within_run_frame", "observations",
           "run_ci", "run_records", "system_label", "mlperf_identity", "task_names", "runs_of", "FRAME_COLUMNS",
           "CHECKED_METADATA", "MLPERF_PREFIX"]

CHECKED_METADATA = ("task_name", "task_version", "model_hash")
FRAME_COLUMNS = ("run_id", "uuid", "config_key", "task", "task_version", "model_variant", "backend", "scenario",
                 "system", "host", "day", "started_at", "metric", "value", "units", "provenance", "validity",
                 "quick", "compliant", "model_hash", "status", "round", "division", "submitter")
MLPERF_PREFIX = "mlperf-"


def config_key(run: RunRecord) -> str:
    """16 hex digits identifying a run's configuration: card hashes, scenario and requested settings."""
    ident = {kind: run.card_hashes.get(kind) for kind in ("task", "model", "backend", "system")}
    ident.update(scenario=run.scenario, settings=run.settings or {})
    return hashlib.sha256(canonical_json(ident).encode()).hexdigest()[:16]


def system_label(card: Mapping[str, Any] | None) -> str:
    """A system's name for grouping (stable across software updates, unlike its card hash)."""
    if not card:
        return "unknown system"
    name = card.get("system_name") or card.get("host_processor_model_name") or "unknown system"
    return f"{name} [{card['cpu_count_used']} CPUs]" if card.get("cpu_count_used") else name


def run_figure(run: RunRecord, metric: str | None = None) -> float | None:
    """A run's figure: its headline value, or the summary's `metric` when another is named."""
    if metric is None or metric == run.headline_metric:
        return run.headline_value
    value = (run.summary or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def mlperf_identity(imported: Mapping[str, Any], card: Mapping[str, Any] | None) -> str:
    """What makes MLPerf results comparable across submitters and rounds, never the system-name string:
    accelerator model and count per node ('8x nvidia h200 sxm 141gb', spelling normalised), or the host
    CPU of a CPU-only system, and the node count when there are several."""
    card = card or {}
    accelerator = _plain(str(imported.get("accelerator") or ""))
    if not accelerator:
        cpus = str(card.get("host_processors_per_node") or "").strip()
        cpu = _plain(str(card.get("host_processor_model_name", "?")))
        accelerator = f"{cpus + 'x ' if cpus.isdigit() else ''}{cpu} (cpu only)"
    nodes = str(card.get("number_of_nodes") or "1").strip()
    return accelerator + (f", {nodes} nodes" if nodes.isdigit() and int(nodes) > 1 else "")


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", " ", text.lower()).strip()


def task_names(task: str | None) -> list[str | None]:
    """The store's task names a task given on the command line means: 'llama2-70b' and 'mlperf-llama2-70b'
    both mean the task measured here and the MLPerf benchmark of that name."""
    if task is None:
        return [None]
    base = task.strip().removeprefix(MLPERF_PREFIX)
    return [base, MLPERF_PREFIX + base]


def runs_of(store: Store, task: str | None, *, limit: int | None = 50, **filters: Any) -> list[RunRecord]:
    """Store.list_runs for a task as the command line names it (task_names: with or without 'mlperf-'),
    newest first, at most `limit`; `filters` as list_runs takes them."""
    rows = [r for name in task_names(task) for r in store.list_runs(task=name, limit=limit, **filters)]
    if task is not None:
        rows.sort(key=lambda r: (r.started_at, r.id), reverse=True)
    return rows[:limit] if limit is not None else rows


def _row(run: RunRecord, system: str, metric: str | None) -> dict[str, Any]:
    started = pd.Timestamp(run.started_at)
    imported, summary = run.imported or {}, run.summary or {}
    own_metric = metric in (None, run.headline_metric)
    row = {"run_id": run.id, "uuid": run.uuid, "config_key": config_key(run), "task": run.task_name,
           "task_version": run.task_version, "model_variant": run.model_variant,
           "backend": run.backend_name, "scenario": run.scenario, "system": system,
           "host": run.hostname, "day": started.date().isoformat(), "started_at": started,
           "metric": metric or run.headline_metric, "value": run_figure(run, metric),
           "units": run.headline_units if own_metric else None,
           "provenance": run.provenance, "validity": run.validity, "quick": run.quick,
           "compliant": run.compliant, "model_hash": run.model_hash, "status": run.status,
           "round": imported.get("round"), "division": imported.get("division"),
           "submitter": imported.get("submitter")}
    if imported:  # dated by the round's publication; one metric semantics (the exact headline field)
        published = pd.Timestamp(summary["round_published"], tz="UTC") if summary.get("round_published") \
            else started
        row.update(started_at=published, day=published.date().isoformat())
        if own_metric and summary.get("headline_field"):
            row["metric"] = str(summary["headline_field"]).removeprefix("result_")
    return row


def runs_frame(store: Store, *, task: str | None = None, backend: str | None = None, scenario: str | None = None,
               source: str | None = None, status: str | None = "complete", metric: str | None = None,
               runs: Iterable[RunRecord] | None = None) -> pd.DataFrame:
    """One row per run with a figure (FRAME_COLUMNS), oldest first; `frame.attrs["excluded"]` counts the
    matching runs left out because they have no figure (no headline, or no `metric` in their summary).

    `task` is taken as the command line names it (task_names). Rows of results imported from MLPerf have
    their round, division and submitter, are dated by their round's publication (started_at, day), name
    their system by mlperf_identity, and their headline metric by the exact headline field
    ('completed_samples_per_sec', 'tokens_per_second', ...), so different semantics never share a series."""
    if runs is not None:
        rows = list(runs)
    else:
        rows = runs_of(store, task, backend=backend, scenario=scenario, status=status, source=source, limit=None,
                       provenance=True)
    cards: dict[str, Any] = {}

    def system(run: RunRecord) -> str:
        digest = run.system_hash
        if digest not in cards:
            try:
                cards[digest] = store.get_card("system", digest)
            except KeyError:
                cards[digest] = None
        if run.imported:
            return mlperf_identity(run.imported, cards[digest])
        return system_label(cards[digest]) if cards[digest] else f"system {digest[:12]}"

    rows = [r.model_copy(update={"imported": store.get_imported(r.id)}) if r.provenance == "imported"
            and r.imported is None else r for r in rows]
    frame = pd.DataFrame([_row(r, system(r), metric) for r in rows], columns=list(FRAME_COLUMNS))
    kept = frame[frame["value"].notna()].sort_values(["started_at", "run_id"], kind="stable").reset_index(drop=True)
    kept.attrs["excluded"] = int(len(frame) - len(kept))
    return kept


def config_runs(store: Store, run: RunRecord, status: str | None = "complete") -> list[RunRecord]:
    """Every run (complete by default) with the same configuration as `run`, oldest first."""
    key = config_key(run)
    same = store.list_runs(task=run.task_name, backend=run.backend_name, scenario=run.scenario,
                           status=status, limit=None)
    return sorted((r for r in same if config_key(r) == key), key=lambda r: (r.started_at, r.id))


def resolve_side(store: Store, ref: str) -> list[RunRecord]:
    """The runs a reference names: a run (id or uuid prefix), or `config:KEY` (a key prefix) for every
    complete run of that configuration."""
    if not ref.startswith("config:"):
        return [store.get_run(ref)]
    prefix = ref.removeprefix("config:").strip().lower()
    if len(prefix) < 4:
        raise AnalysisError(f"{ref!r}: give at least 4 hex digits of a configuration key (see `infersight analyze RUN`)")
    found: dict[str, list[RunRecord]] = {}
    for run in store.list_runs(status="complete", limit=None):
        key = config_key(run)
        if key.startswith(prefix):
            found.setdefault(key, []).append(run)
    if not found:
        raise AnalysisError(f"{ref!r}: no complete run has a configuration key starting {prefix!r}")
    if len(found) > 1:
        raise AnalysisError(f"{ref!r} is ambiguous: it matches configurations {names(sorted(found))}")
    return sorted(next(iter(found.values())), key=lambda r: (r.started_at, r.id))


def run_records(store: Store, run: RunRecord) -> dict[str, np.ndarray] | None:
    if run.provenance == "imported":
        return None
    rec = store.read_perf_samples(run.id)
    return rec if len(rec["completed_ns"]) else None


OBSERVATION_COLUMNS = ("value", "run", "host", "day", "run_value")


def observations(run: RunRecord, records: Mapping[str, np.ndarray] | None, metric: str | None = None,
                 batches: int = 16) -> list[dict[str, Any]]:
    """Within-run observations of one run for reproducibility: its figure over contiguous batches
    (`analysis.samples.batch_figures`) with run, host and day, and the run's own figure as run_value;
    a run without per-query records (imported) gives one row, its figure."""
    name = metric or run.headline_metric
    figure = run_figure(run, name)
    if figure is None:
        raise AnalysisError(f"run {run.id} has no {name} figure")
    values = S.batch_figures(records, name, batches) if records is not None else [figure]
    day = pd.Timestamp(run.started_at).date().isoformat()
    return [{"value": float(v), "run": str(run.id), "host": run.hostname, "day": day,
             "run_value": float(figure)} for v in values]


def within_run_frame(store: Store, runs: Iterable[RunRecord], metric: str | None = None,
                     batches: int = 16) -> pd.DataFrame:
    """`observations` of every run, as one frame (OBSERVATION_COLUMNS)."""
    rows = [row for run in runs for row in observations(run, run_records(store, run), metric, batches)]
    return pd.DataFrame(rows, columns=list(OBSERVATION_COLUMNS))


def run_ci(store: Store, run: RunRecord, *, confidence: float = 0.95, recompute: bool = False,
           records: Mapping[str, np.ndarray] | None = None) -> tuple[dict[str, Any] | None, str]:
    """(the run's within-run CIs, where they come from): stored with the run when it finished, or
    computed now from its performance log (older runs, another confidence, or `recompute`);
    `records`, when the caller has read them already, saves reading them again."""
    stored = (run.summary or {}).get("ci")
    if (not recompute and isinstance(stored, dict) and stored.get("version") == CI_VERSION
            and stored.get("confidence") == confidence):
        return stored, "stored with the run"
    rec = records if records is not None else run_records(store, run)
    if rec is None:
        why = ("imported result: MLPerf publishes no per-query records" if run.provenance == "imported"
               else "the run has no per-query records")
        return None, why
    target = ((run.summary or {}).get("effective_settings") or {}).get("target_latency_percentile")
    return run_cis(rec, confidence=confidence, target_percentile=target), "computed from the performance log"
