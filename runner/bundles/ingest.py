"""The server's side of submission and sync: receive a run bundle sent as a zip (read within the size
limits, checked whole, stored once by its sha256), list the runs a syncing client may pull, page by page
after a cursor, and send them as one bundle. The REST API (infersight/api/bundles.py) and the local end of
`infersight sync` call these; they block on the store.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from runner.bundles.export import bundle_zip
from runner.bundles._format import MANIFEST
from runner.bundles.importer import BundleImport, received_again, store_bundle
from runner.bundles.read import Limits, check_bundle, unpack_zip
from runner.errors import BundleTooLarge

__all__ = ["receive_bundle", "SyncPage", "sync_page", "send_bundle", "PAGE_LIMIT"]

PAGE_LIMIT = 500  # most runs one sync page may list or one bundle sent for sync may hold
_SPOOL_BYTES = 32 << 20  # an upload larger than this waits in a temporary file, not in memory


def receive_bundle(store: Any, source: bytes | BinaryIO, *, submitted_by: str | None = None, label: str = "upload",
                   limits: Limits = Limits()) -> BundleImport:
    """Read a zip bundle (bytes, or a binary stream read to its end), check it complete and consistent, and
    store its runs not stored yet in one transaction. A bundle received before (its manifest's sha256 known)
    stores nothing and is answered from its submissions row, without being checked again.

    ImportFormatError naming the file and problem (BundleTooLarge over `limits`) before anything is stored.
    """
    with _spooled(source, label, limits) as file:
        files = unpack_zip(file, label, limits)
    if MANIFEST in files:  # a retry of a bundle received before is answered without checking it again
        sha = hashlib.sha256(files[MANIFEST]).hexdigest()
        before = store.bundle_received(sha)
        if before is not None:
            return received_again(Path(label), sha, before)
    return store_bundle(store, check_bundle(files, label), submitted_by=submitted_by)


@contextmanager
def _spooled(source: bytes | BinaryIO, label: str, limits: Limits) -> Iterator[BinaryIO]:
    """The bundle as a seekable file, refused once it passes limits.max_bytes (a stream is not read further)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        _check_size(len(source), label, limits)
        yield io.BytesIO(source)
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        size = 0
        while chunk := source.read(1 << 20):
            size += len(chunk)
            _check_size(size, label, limits)
            spool.write(chunk)
        spool.seek(0)
        yield spool


def _check_size(size: int, label: str, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise BundleTooLarge(label, None, f"more than the {limits.max_bytes} bytes a bundle may have")


@dataclass(frozen=True)
class SyncPage:
    """One page for a syncing client: run uuids it may pull, the cursor to ask after next, whether more follow."""

    runs: tuple[str, ...]
    cursor: str
    more: bool

    def to_dict(self) -> dict[str, Any]:
        return {"runs": list(self.runs), "cursor": self.cursor, "more": self.more}


def sync_page(store: Any, cursor: str | None, limit: int = 100) -> SyncPage:
    """The finished runs measured by infersight (here or on a machine that submitted them) after `cursor`
    (None: from the start), in the order the store received them. A page ends before a run still running."""
    after = 0 if cursor is None else int(cursor)
    uuids, last, more = store.bundle_runs_after(after, max(1, min(limit, PAGE_LIMIT)))
    return SyncPage(tuple(uuids), str(last), more)


def send_bundle(store: Any, uuids: Sequence[str]) -> bytes:
    """The runs `uuids` as one zip bundle (RunNotFound for an unknown one)."""
    if not 1 <= len(uuids) <= PAGE_LIMIT:
        raise ValueError(f"send 1 to {PAGE_LIMIT} runs in one bundle, not {len(uuids)}")
    return bundle_zip(store, list(uuids))[0]
