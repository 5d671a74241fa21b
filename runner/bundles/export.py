"""Export runs of a store as a run bundle (runner/bundles/_format.py): a folder, .zip or .tar(.gz) archive."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any

import numpy as np

from runner.bundles._format import BUNDLE_VERSION, CARD_KINDS, FORMAT, MANIFEST, RunFile
from runner.errors import InfersightError
from runner.store import RunRecord, Store

__all__ = ["export_bundle", "bundle_zip", "bundle_files", "ExportResult", "archive_kind"]

_RUN_FIELDS = tuple(RunFile.model_fields)
_PERF_FIELDS = ("settings", "summary", "validity", "validity_reasons", "headline_metric", "headline_value",
                "headline_units")
_ACCURACY_FIELDS = ("accuracy_metric", "accuracy_value", "accuracy_target", "accuracy_passed")


@dataclass(frozen=True)
class ExportResult:
    """What export_bundle wrote: where, which runs (uuids), how many per-query records, the manifest's sha256."""

    path: Path
    kind: str
    runs: tuple[str, ...]
    records: int
    bundle_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "runs": list(self.runs), "records": self.records,
                "bundle_sha256": self.bundle_sha256}


def archive_kind(path: Path) -> str:
    """'zip', 'tar.gz', 'tar' or 'folder', from the name."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    return "tar" if name.endswith(".tar") else "folder"


def export_bundle(store: Store, refs: list[str | int], out: Path) -> ExportResult:
    """Write the runs `refs` (ids, uuids or prefixes) with their cards and logs as one bundle at `out`.

    Only finished runs measured by infersight travel in bundles (MLPerf results travel as MLPerf trees).
    `out` must not exist; nothing is left there when export fails.
    """
    out = Path(out)
    if out.exists():
        raise InfersightError(f"{out}: already exists; give a new path for the bundle")
    files, runs, records = bundle_files(store, refs)
    kind = archive_kind(out)
    _write(files, out, kind)
    sha = hashlib.sha256(files[MANIFEST]).hexdigest()
    return ExportResult(out, kind, tuple(r.uuid for r in runs), records, sha)


def bundle_zip(store: Store, refs: list[str | int]) -> tuple[bytes, str]:
    """The runs `refs` as a zip bundle in memory, and its sha256, for sending (`infersight submit`, sync).

    The bundle is dated by its newest run's end, so the same runs make the same bundle (same sha256): a
    retried submission is recognised by the server and stores nothing twice.
    """
    files, _, _ = bundle_files(store, refs, dated_by_runs=True)
    return _zip_bytes(files), hashlib.sha256(files[MANIFEST]).hexdigest()


def bundle_files(store: Store, refs: list[str | int], *, dated_by_runs: bool = False
                 ) -> tuple[dict[str, bytes], list[RunRecord], int]:
    """A bundle's files {name: bytes}, its runs and their number of per-query records."""
    runs = _unique([store.get_run(ref) for ref in refs])
    files: dict[str, bytes] = {}
    entries, records = [], 0
    for run in runs:
        run_files, n = _run_files(store, run)
        folder = f"runs/{run.uuid}"
        files.update({f"{folder}/{name}": data for name, data in run_files.items()})
        entries.append({"uuid": run.uuid, "folder": folder, "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
            for name, data in run_files.items()}})
        records += n
    now = datetime.now(timezone.utc)
    created = max(r.finished_at or r.started_at for r in runs) if dated_by_runs else now
    manifest = {"format": FORMAT, "bundle_version": BUNDLE_VERSION, "created_at": created.isoformat(),
                "exported_by": _version(), "hostname": store.hostname,
                "store_schema_version": store.schema_version(), "runs": entries}
    files[MANIFEST] = _json(manifest)
    return files, runs, records


def _unique(runs: list[RunRecord]) -> list[RunRecord]:
    seen, out = set(), []
    for run in runs:
        if run.provenance != "measured":
            raise InfersightError(f"run {run.id}: only runs measured by infersight travel in run bundles "
                                  f"(this one is {run.provenance}: MLPerf results travel as MLPerf trees)")
        if run.status == "running":
            raise InfersightError(f"run {run.id} is still running; export it when it has finished")
        if run.uuid not in seen:
            seen.add(run.uuid)
            out.append(run)
    return out


def _run_files(store: Store, run: RunRecord) -> tuple[dict[str, bytes], int]:
    """The files of one run's folder, and its number of per-query records."""
    hashes = {kind: run.card_hashes[kind] for kind in CARD_KINDS}
    run_json = {k: _plain(getattr(run, k)) for k in _RUN_FIELDS if k != "cards"} | {"cards": hashes}
    files = {"run.json": _json(run_json)}
    files.update({f"cards/{kind}.json": _json(store.get_card(kind, digest)) for kind, digest in hashes.items()})
    rec = store.read_perf_samples(run.id)
    n = len(next(iter(rec.values())))
    perf = {k: getattr(run, k) for k in _PERF_FIELDS} | {"records": n, "columns": sorted(rec)}
    files["performance.json"] = _json(perf)
    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(arr, dtype="<i8") for name, arr in rec.items()})
    files["performance.npz"] = buffer.getvalue()
    samples = store.read_accuracy_samples(run.id)
    files["accuracy.json"] = _json({k: getattr(run, k) for k in _ACCURACY_FIELDS} | {"records": len(samples),
                                                                           "samples": samples})
    return files, n


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _version() -> str:
    try:
        return f"infersight {distribution_version('infersight')}"
    except Exception:  # noqa: BLE001 - not installed as a distribution (a source checkout)
        return "infersight (source)"


def _write(files: dict[str, bytes], out: Path, kind: str) -> None:
    """Write the files at `out` through a temporary sibling renamed into place (nothing half-written)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        target = tmp / "bundle"
        if kind == "folder":
            for name, data in files.items():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                (target / name).write_bytes(data)
        elif kind == "zip":
            target.write_bytes(_zip_bytes(files))
        else:
            options = {"mode": "w:gz", "compresslevel": 6} if kind == "tar.gz" else {"mode": "w"}
            with tarfile.open(target, **options) as tf:
                for name, data in files.items():
                    info = tarfile.TarInfo(name)
                    info.size, info.mode = len(data), 0o644
                    tf.addfile(info, io.BytesIO(data))
        os.replace(target, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    """The files as one zip archive (deflated; fixed member dates, so the same files make the same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            zf.writestr(info, data, compresslevel=6)
    return buffer.getvalue()
