"""`infersight sync`: pull the runs others submitted to a server into the local store and push the runs
measured here, page by page, resumable.

Where sync stands with each server is kept in the local store (sync_state: the server's cursor after the
last page pulled, the id of the last local run pushed) and moved on after each page, so an interrupted sync
goes on where it stopped. Nothing is stored twice: a pulled run already here is not fetched again, and a
pushed page is the same bundle (same sha256) when sent again, which the server stores once.

Push sends the finished runs measured with this store; runs that arrived in bundles (pulled, or imported
from a file) are their measurer's to push. Functions block on the store and on the remote.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from runner.bundles.export import bundle_zip
from runner.bundles.importer import bundled_from
from runner.bundles.ingest import SyncPage, receive_bundle, send_bundle, sync_page
from runner.errors import RunNotFound

__all__ = ["Remote", "StoreRemote", "SyncResult", "sync", "submit_runs"]


class Remote(Protocol):
    """A server to sync with (infersight/client.py talks to one over HTTP). `name` keys the sync cursor."""

    name: str

    def submit(self, data: bytes) -> dict[str, Any]:
        """Send one zip bundle; the server's answer (BundleImport.to_dict())."""

    def page(self, cursor: str | None, limit: int) -> SyncPage:
        """The runs to pull after `cursor`."""

    def fetch(self, uuids: Sequence[str]) -> bytes:
        """The runs `uuids` as one zip bundle."""


class StoreRemote:
    """Another store reached directly (a shared store, or tests): the server's functions called in-process."""

    def __init__(self, store: Any, name: str | None = None) -> None:
        self.store, self.name = store, name or store.url

    def submit(self, data: bytes) -> dict[str, Any]:
        return receive_bundle(self.store, data).to_dict()

    def page(self, cursor: str | None, limit: int) -> SyncPage:
        return sync_page(self.store, cursor, limit)

    def fetch(self, uuids: Sequence[str]) -> bytes:
        return send_bundle(self.store, uuids)


@dataclass(frozen=True)
class SyncResult:
    """What a sync did: runs stored here, runs the server stored, bundles sent, and where it now stands."""

    server: str
    pulled: int = 0
    pushed: int = 0
    bundles_sent: int = 0
    pull_cursor: str | None = None
    pushed_run_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"server": self.server, "pulled": self.pulled, "pushed": self.pushed,
                "bundles_sent": self.bundles_sent, "pull_cursor": self.pull_cursor,
                "pushed_run_id": self.pushed_run_id}


def sync(store: Any, remote: Remote, *, pull: bool = True, push: bool = True, page_size: int = 50,
         on_page: Callable[[SyncResult], None] | None = None) -> SyncResult:
    """Pull then push, a page at a time, recording after each page where sync stands with `remote`."""
    cursor = store.sync_cursor(remote.name)
    result = SyncResult(remote.name, pull_cursor=cursor.pull_cursor, pushed_run_id=cursor.pushed_run_id)
    steps = [step for step, wanted in ((_pull_page, pull), (_push_page, push)) if wanted]
    for step in steps:
        more = True
        while more:
            result, more = step(store, remote, result, page_size)
            store.set_sync_cursor(remote.name, replace(cursor, pull_cursor=result.pull_cursor,
                                                       pushed_run_id=result.pushed_run_id))
            if on_page is not None:
                on_page(result)
    return result


def _pull_page(store: Any, remote: Remote, result: SyncResult, size: int) -> tuple[SyncResult, bool]:
    page = remote.page(result.pull_cursor, size)
    missing = [uuid for uuid in page.runs if not _have(store, uuid)]
    pulled = 0
    if missing:
        pulled = len(receive_bundle(store, remote.fetch(missing), label=f"{remote.name} (sync)").imported)
    return replace(result, pulled=result.pulled + pulled, pull_cursor=page.cursor), page.more


def _push_page(store: Any, remote: Remote, result: SyncResult, size: int) -> tuple[SyncResult, bool]:
    uuids, last, more = store.bundle_runs_after(result.pushed_run_id, size)
    mine = [uuid for uuid in uuids if bundled_from(store.get_run(uuid)) is None]
    if not mine:
        return replace(result, pushed_run_id=last), more
    answer = remote.submit(bundle_zip(store, mine)[0])
    return replace(result, pushed=result.pushed + len(answer["imported"]), bundles_sent=result.bundles_sent + 1,
                   pushed_run_id=last), more


def _have(store: Any, uuid: str) -> bool:
    try:
        return store.get_run(uuid).uuid == uuid
    except RunNotFound:
        return False


def submit_runs(store: Any, remote: Remote, refs: Sequence[str | int]) -> dict[str, Any]:
    """Send the runs `refs` (ids, uuids, prefixes) as one bundle to `remote`; its answer (BundleImport's dict).
    The same runs make the same bundle, so submitting again stores nothing twice."""
    return remote.submit(bundle_zip(store, list(refs))[0])
