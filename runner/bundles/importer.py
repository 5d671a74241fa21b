"""Store a run bundle: every run with its cards (the exporting machine's system card kept), its per-query
records and accuracy log, keyed by the run's uuid, and the bundle itself by its sha256, so that importing
or submitting twice stores nothing twice.

The whole bundle is read and checked (runner/bundles/read.py) before anything is stored, then stored in one
transaction with its submissions row (runner/store/_bundled.py): a process killed half-way leaves nothing,
and a retry stores it once. A bundle run keeps its uuid, host, times, settings and results; its provenance
stays "measured" (infersight measured it, with per-query records) and its source says which bundle and host
it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.bundles._format import CARD_KINDS, SOURCE_MARK
from runner.bundles.read import Bundle, BundledRun, read_bundle
from runner.errors import ImportFormatError, RunNotFound
from runner.store import BundledRunRows, Received, RunRecord, Store

__all__ = ["import_bundle", "store_bundle", "received_again", "BundleImport", "bundled_from"]


@dataclass(frozen=True)
class BundleImport:
    """What storing a bundle did: its sha256 and host, the runs stored (local ids), those present already,
    the per-query records stored, and whether this bundle was received before (then nothing was stored)."""

    path: Path
    bundle_sha256: str
    hostname: str
    imported: tuple[int, ...]
    already_present: tuple[int, ...]
    records: int
    received_before: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bundle_sha256": self.bundle_sha256, "hostname": self.hostname,
                "imported": list(self.imported), "already_present": list(self.already_present),
                "records": self.records, "received_before": self.received_before}


def bundled_from(run: RunRecord) -> str | None:
    """'run bundle <hash> from <host>' for a run imported from a bundle, None for one measured here."""
    source = run.source or ""
    return source[source.index(SOURCE_MARK):] if SOURCE_MARK in source else None


def import_bundle(store: Store, path: Path) -> BundleImport:
    """Check the bundle at `path` whole, then store its runs not stored yet; ImportFormatError (nothing stored)
    if the bundle is incomplete or inconsistent, or names a run the store holds with other cards."""
    return store_bundle(store, read_bundle(Path(path)))


def store_bundle(store: Any, bundle: Bundle, *, submitted_by: str | None = None) -> BundleImport:
    """Store a checked bundle's runs not stored yet, in one transaction with its submissions row; a bundle
    received before stores nothing. ImportFormatError if a run is in the store with other cards."""
    for item in bundle.runs:
        _check_present(store, item, bundle)
    rows = [_rows(item, bundle) for item in bundle.runs]
    done = store.put_bundle(bundle.sha256, rows, hostname=bundle.manifest.hostname, submitted_by=submitted_by,
                            size_bytes=bundle.size_bytes)
    if not done.new:
        return received_again(bundle.path, bundle.sha256, done)
    records = sum(item.performance.records for item in bundle.runs if item.run.uuid in done.stored_uuids)
    return BundleImport(bundle.path, bundle.sha256, bundle.manifest.hostname, done.stored, done.present, records)


def received_again(path: Path, sha256: str, before: Received) -> BundleImport:
    """The answer to a bundle received before: nothing stored now, every run present."""
    return BundleImport(path, sha256, before.hostname, (), before.stored + before.present, 0, True)


def _check_present(store: Store, item: BundledRun, bundle: Bundle) -> None:
    """ImportFormatError if the store holds the bundle's run (same uuid) with other cards."""
    try:
        run = store.get_run(item.run.uuid)
    except RunNotFound:
        return
    if run.uuid != item.run.uuid:
        return  # a longer uuid merely starting like this one: not the same run
    differs = [kind for kind in CARD_KINDS if run.card_hashes[kind] != item.run.cards[kind]]
    if differs:
        raise ImportFormatError(str(bundle.path), None, f"run {item.run.uuid} is in the store already (id "
                                                        f"{run.id}) with other {', '.join(differs)} card(s)")


def _rows(item: BundledRun, bundle: Bundle) -> BundledRunRows:
    run, perf, acc = item.run, item.performance, item.accuracy
    cards = {kind: (item.cards[kind], run.cards[kind], _card_name(kind, item.cards[kind])) for kind in CARD_KINDS}
    values = {**run.model_dump(exclude={"cards"}), "provenance": "measured",
              "source": f"{run.source}; {SOURCE_MARK} {bundle.sha256[:12]} from {run.hostname}",
              **{f"{kind}_hash": digest for kind, digest in run.cards.items()},
              **perf.model_dump(exclude={"records", "columns"}),
              **acc.model_dump(exclude={"records", "samples"})}
    accuracy = [{"sample_index": s.sample_index, "prediction": s.prediction, "reference": s.reference,
                 "correct": s.correct} for s in acc.samples]
    return BundledRunRows(cards, values, item.records, accuracy)


def _card_name(kind: str, card: dict[str, Any]) -> str:
    """The name a card is stored under, as the runner names it."""
    return {"task": lambda: card["metadata"]["name"], "model": lambda: card["name"],
            "backend": lambda: card["backend"], "system": lambda: card["system_name"]}[kind]()
