"""Import a run bundle into a store: every run with its cards (the exporting machine's system card kept),
its per-query records and accuracy log, keyed by the run's uuid so that importing twice stores nothing twice.

The whole bundle is read and checked (runner/bundles/read.py) before anything is stored. A bundle run keeps
its uuid, host, times, settings and results; its provenance stays "measured" (infersight measured it, with
per-query records) and its source says which bundle and host it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.bundles._format import CARD_KINDS, SOURCE_MARK
from runner.bundles.read import Bundle, BundledRun, read_bundle
from runner.errors import ImportFormatError, RunNotFound
from runner.store import RunRecord, Store

__all__ = ["import_bundle", "BundleImport", "bundled_from"]

_PENDING = "import from run bundle {sha} not finished (interrupted); its records may be incomplete"


@dataclass(frozen=True)
class BundleImport:
    """What import_bundle did: the bundle's sha256 and host, the runs stored (local ids) and those present already."""

    path: Path
    bundle_sha256: str
    hostname: str
    imported: tuple[int, ...]
    already_present: tuple[int, ...]
    records: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bundle_sha256": self.bundle_sha256, "hostname": self.hostname,
                "imported": list(self.imported), "already_present": list(self.already_present),
                "records": self.records}


def bundled_from(run: RunRecord) -> str | None:
    """'run bundle <hash> from <host>' for a run imported from a bundle, None for one measured here."""
    source = run.source or ""
    return source[source.index(SOURCE_MARK):] if SOURCE_MARK in source else None


def import_bundle(store: Store, path: Path) -> BundleImport:
    """Check the bundle at `path` whole, then store its runs not stored yet; ImportFormatError (nothing stored)
    if the bundle is incomplete or inconsistent, or names a run the store holds with other cards."""
    bundle = read_bundle(Path(path))
    present = {item.run.uuid: _existing(store, item, bundle) for item in bundle.runs}
    imported, records = [], 0
    for item in bundle.runs:
        if present[item.run.uuid] is None:
            imported.append(_store_run(store, item, bundle))
            records += item.performance.records
    return BundleImport(bundle.path, bundle.sha256, bundle.manifest.hostname, tuple(imported),
                        tuple(v for v in present.values() if v is not None), records)


def _existing(store: Store, item: BundledRun, bundle: Bundle) -> int | None:
    """The local id of the bundle's run when the store holds it already (same uuid and cards), else None."""
    try:
        run = store.get_run(item.run.uuid)
    except RunNotFound:
        return None
    if run.uuid != item.run.uuid:
        return None  # a longer uuid merely starting like this one: not the same run
    differs = [kind for kind in CARD_KINDS if run.card_hashes[kind] != item.run.cards[kind]]
    if differs:
        raise ImportFormatError(str(bundle.path), None, f"run {item.run.uuid} is in the store already (id "
                                                        f"{run.id}) with other {', '.join(differs)} card(s)")
    if run.error == _PENDING.format(sha=bundle.sha256[:12]):
        raise ImportFormatError(str(bundle.path), None, f"run {item.run.uuid} (id {run.id}) was only partly "
                                f"imported from this bundle before (interrupted): it stays marked aborted; "
                                f"import the bundle into a fresh store to have it whole")
    return run.id


def _store_run(store: Store, item: BundledRun, bundle: Bundle) -> int:
    run, perf, acc = item.run, item.performance, item.accuracy
    for kind in CARD_KINDS:
        store.put_card(kind, item.cards[kind], run.cards[kind], _card_name(kind, item.cards[kind]))
    values = {**run.model_dump(exclude={"cards", "status", "error"}), "provenance": "measured",
              "source": f"{run.source}; {SOURCE_MARK} {bundle.sha256[:12]} from {run.hostname}",
              **{f"{kind}_hash": digest for kind, digest in run.cards.items()},
              **perf.model_dump(exclude={"records", "columns"}),
              **acc.model_dump(exclude={"records", "samples"})}
    run_id = store.put_bundled_run(values, pending=_PENDING.format(sha=bundle.sha256[:12]))
    store.append_perf_samples(run_id, item.records)
    samples = acc.samples
    if samples:
        store.put_accuracy_samples(run_id, [s.sample_index for s in samples], [s.prediction for s in samples],
                                   [s.reference for s in samples], [s.correct for s in samples])
    store.finish_bundled_run(run_id, status=run.status, error=run.error)
    return run_id


def _card_name(kind: str, card: dict[str, Any]) -> str:
    """The name a card is stored under, as the runner names it."""
    return {"task": lambda: card["metadata"]["name"], "model": lambda: card["name"],
            "backend": lambda: card["backend"], "system": lambda: card["system_name"]}[kind]()
