"""Tabular exports: stored runs as one flat table (CSV, Parquet or JSON) and a run's per-query records as Parquet.

`runs_table(store, task=..., scenario=..., ...)` gives one row per run with its identity, the cores
its system card says it used, its settings (analysis.settings), dates, quick/compliant flags, validity, headline,
accuracy and latency/throughput figures, and for imported MLPerf results their round, division,
submitter and system. `queries_table(store, run)` gives the run's per-query log (one row per query:
issue, scheduled and completed times in ns, latency in ms, and the optional per-query columns).
`write_table(frame, path, format)` writes either atomically: a temporary file renamed into place,
so a failure leaves nothing half-written.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.load import run_records, runs_of
from analysis.settings import settings_of
from runner.errors import AnalysisError
from runner.store import RunRecord, Store

__all__ = ["FORMATS", "runs_table", "queries_table", "table_bytes", "write_table", "RUN_COLUMNS"]

FORMATS = ("csv", "parquet", "json")
RUN_COLUMNS = ["id", "uuid", "task", "model_variant", "backend", "scenario", "system", "cores", "settings",
               "target_qps", "started_at", "finished_at", "quick", "compliant", "status", "validity",
               "headline_metric", "headline_value", "headline_units", "accuracy_metric", "accuracy_value",
               "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "samples_per_second", "tokens_per_second",
               "provenance", "round", "division", "submitter", "label"]


def runs_table(store: Store, task: str | None = None, *, limit: int | None = None, **filters: Any) -> pd.DataFrame:
    """Runs (newest first, `filters` as Store.list_runs takes them) as RUN_COLUMNS; AnalysisError when
    none match."""
    rows = runs_of(store, task, limit=limit, provenance=True, **filters)
    if not rows:
        asked = ", ".join(f"{k} {v}" for k, v in {"task": task, **filters}.items() if v) or "any"
        raise AnalysisError(f"export: no runs match ({asked}); list what the store holds with `infersight runs`")
    systems: dict[str, dict[str, Any]] = {}
    out = []
    for run in rows:
        if run.system_hash not in systems:
            systems[run.system_hash] = _card(store, run.system_hash)
        out.append(_row(run, systems[run.system_hash]))
    return pd.DataFrame(out, columns=RUN_COLUMNS)


def _card(store: Store, digest: str) -> dict[str, Any]:
    try:
        return store.get_card("system", digest)
    except KeyError:
        return {}


def _row(run: RunRecord, system: dict[str, Any]) -> dict[str, Any]:
    summary, imported = run.summary or {}, run.imported or {}
    scenario_settings = (run.settings or {}).get("scenario") or {}
    return {"id": run.id, "uuid": run.uuid, "task": run.task_name, "model_variant": run.model_variant,
            "backend": run.backend_name, "scenario": run.scenario,
            "system": imported.get("system_name") or system.get("system_name", ""),
            "cores": _count(system.get("cpu_count_used") or system.get("host_processor_core_count")),
            "settings": ", ".join(f"{k}={v}" for k, v in settings_of(run).items()),
            "target_qps": scenario_settings.get("target_qps") if run.scenario == "server" else None,
            "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
            "quick": bool(run.quick), "compliant": bool(run.compliant), "status": run.status,
            "validity": run.validity, "headline_metric": run.headline_metric,
            "headline_value": run.headline_value, "headline_units": run.headline_units,
            "accuracy_metric": run.accuracy_metric, "accuracy_value": run.accuracy_value,
            **{k: _number(summary.get(k)) for k in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
                                                    "samples_per_second", "tokens_per_second")},
            "provenance": run.provenance, "round": imported.get("round"),
            "division": imported.get("division"), "submitter": imported.get("submitter"), "label": run.label}


def _iso(value: Any) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


def _count(value: Any) -> int | None:
    """A count as an int (MLPerf system JSON writes "32"; a column of one type is what Parquet can hold)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def queries_table(store: Store, run_ref: str | int) -> pd.DataFrame:
    """The per-query records of a measured run, one row per query, with latency_ms (completed - scheduled);
    AnalysisError for a run without them (imported from MLPerf, or not finished)."""
    run = store.get_run(run_ref)
    records = run_records(store, run)
    if records is None:
        why = "it was imported from MLPerf, which publishes no per-query records" \
            if run.provenance == "imported" else f"it has none stored (status {run.status})"
        raise AnalysisError(f"run {run.id} has no per-query log to export: {why}; export a run measured here")
    frame = pd.DataFrame({name: values for name, values in records.items()})
    frame.insert(0, "run_id", run.id)
    frame["latency_ms"] = (frame["completed_ns"] - frame["scheduled_ns"]) / 1e6
    return frame


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """`frame` as the bytes of a csv, parquet or json (records) file; AnalysisError for a bad format."""
    if fmt not in FORMATS:
        raise AnalysisError(f"export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    return frame.to_json(orient="records", indent=1, date_format="iso").encode()


def write_table(frame: pd.DataFrame, path: str | Path, fmt: str) -> Path:
    """Write `frame` to `path` as csv, parquet or json (records), atomically; AnalysisError for a bad format or
    a folder that does not exist."""
    data = table_bytes(frame, fmt)
    target = Path(path)
    if not target.parent.is_dir():
        raise AnalysisError(f"{target}: the folder {target.parent} does not exist; create it or choose another path")
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as sink:
            sink.write(data)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
