"""Submission and sync of run bundles between two real SQLite stores, through the server's functions
(runner/bundles/ingest.py, sync.py): a bundle is checked whole before anything is stored, stored once by its
sha256, and a sync cut short goes on where it stopped without storing anything twice."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import _zips
import pytest

from runner.bundles import (
    Limits,
    StoreRemote,
    bundle_zip,
    receive_bundle,
    sync,
    sync_page,
)
from runner.errors import BundleTooLarge, ImportFormatError
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store

QUICK = {"min_duration_ms": 1, "min_query_count": 200, "warmup_duration_ms": 0}


def _measure(store: Store, n: int) -> list[str]:
    """n real quick runs of digits on the null backend; their uuids."""
    prep = prepare_run(RunRequest("digits", "null", "single_stream", scenario_settings=QUICK, quick=True))
    return [store.get_run(execute_run(prep, store)).uuid for _ in range(n)]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, digits_models):
    """A client store with 5 runs measured on host client-a, a server store with 3 measured on server-b."""
    root = tmp_path_factory.mktemp("sync")
    with Store(str(root / "client.db")) as client:
        client.hostname = "client-a"
        mine = _measure(client, 5)
    with Store(str(root / "server.db")) as server:
        server.hostname = "server-b"
        theirs = _measure(server, 3)
    return {"root": root, "mine": mine, "theirs": theirs}


@pytest.fixture
def stores(seeded, tmp_path):
    """Fresh copies of the client and server stores for one test."""
    for name in ("client.db", "server.db"):
        shutil.copy(seeded["root"] / name, tmp_path / name)
    with Store(str(tmp_path / "client.db")) as client, Store(str(tmp_path / "server.db")) as server:
        client.hostname, server.hostname = "client-a", "server-b"
        yield client, server


def _uuids(store: Store) -> list[str]:
    return sorted(r.uuid for r in store.list_runs(limit=None))


def test_a_submitted_bundle_is_stored_whole_once_by_its_hash(seeded, stores):
    client, server = stores
    data, sha = bundle_zip(client, seeded["mine"][:2])
    assert bundle_zip(client, seeded["mine"][:2]) == (data, sha)  # the same runs make the same bundle
    first = receive_bundle(server, io.BytesIO(data), submitted_by="ana")
    assert len(first.imported) == 2 and first.bundle_sha256 == sha and not first.received_before
    records = sum(_records(client, uuid) for uuid in seeded["mine"][:2])
    assert first.records == records and first.hostname == "client-a"
    again = receive_bundle(server, data)
    assert again.received_before and again.imported == () and sorted(again.already_present) == sorted(first.imported)
    assert _uuids(server) == sorted(seeded["theirs"] + seeded["mine"][:2])
    run = server.get_run(seeded["mine"][0])
    assert run.hostname == "client-a" and run.status == "complete" and "run bundle" in run.source
    assert _records(server, run.uuid) == _records(client, run.uuid)
    overlapping = receive_bundle(server, bundle_zip(client, seeded["mine"][1:3])[0])  # one run present already
    assert len(overlapping.imported) == 1 and len(overlapping.already_present) == 1


def _records(store: Store, uuid: str) -> int:
    return store.read_perf_samples(store.get_run(uuid).id)["completed_ns"].size


def _card(files: dict, kind: str) -> str:
    return next(name for name in files if name.endswith(f"cards/{kind}.json"))


def _drop_card(files):
    del files[_card(files, "system")]


def _change_card(files):  # the file and its manifest entry changed together: the card hash is what tells
    import hashlib

    name = _card(files, "backend")
    card = json.loads(files[name])
    card["settings"] = {"intra_op_threads": 64}
    files[name] = json.dumps(card).encode()
    manifest = json.loads(files["bundle.json"])
    entry = next(e for e in manifest["runs"] if name.startswith(e["folder"]))
    entry["files"]["cards/backend.json"] = {"sha256": hashlib.sha256(files[name]).hexdigest(),
                                            "size_bytes": len(files[name])}
    files["bundle.json"] = json.dumps(manifest).encode()


def _change_log(files):
    name = next(n for n in files if n.endswith("accuracy.json"))
    files[name] = files[name].replace(b"\n", b"\n ", 1)


def _escape(files):
    files["runs/../../../etc/cron.d/x"] = b"* * * * * root true"


@pytest.mark.parametrize("spoil, message", [
    (_drop_card, "cards/system.json: missing from the bundle"),
    (_change_card, "differs from the run's backend card hash"),
    (_change_log, "accuracy.json: sha256"),
    (_escape, "unsafe name 'runs/../../../etc/cron.d/x'"),
])
def test_a_bad_bundle_is_refused_naming_the_problem_and_stores_nothing(seeded, stores, spoil, message):
    client, server = stores
    before = _uuids(server)
    with pytest.raises(ImportFormatError, match=message.replace("(", r"\(").replace(".", r"\.")):
        receive_bundle(server, _zips.spoil(bundle_zip(client, seeded["mine"][:2])[0], spoil))
    assert _uuids(server) == before


def test_a_bundle_over_the_limits_is_refused_before_it_is_unpacked(seeded, stores):
    client, server = stores
    data = bundle_zip(client, seeded["mine"][:1])[0]
    with pytest.raises(BundleTooLarge, match="more than the 1000 bytes"):
        receive_bundle(server, io.BytesIO(data), limits=Limits(max_bytes=1000))  # a stream, refused part-read
    with pytest.raises(BundleTooLarge, match="bytes unpacked, more than the 5000"):
        receive_bundle(server, data, limits=Limits(max_unpacked_bytes=5000))
    with pytest.raises(BundleTooLarge, match="9 files, more than the 3"):
        receive_bundle(server, data, limits=Limits(max_files=3))
    with pytest.raises(ImportFormatError, match="not a zip archive"):
        receive_bundle(server, b"{}" * 10)
    assert seeded["mine"][0] not in _uuids(server)


def test_sync_pulls_theirs_pushes_mine_and_a_second_sync_moves_nothing(seeded, stores):
    client, server = stores
    result = sync(client, StoreRemote(server, "https://team.example"), page_size=2)
    assert (result.pulled, result.pushed) == (3, 5)
    assert _uuids(client) == _uuids(server) == sorted(seeded["mine"] + seeded["theirs"])
    pulled = client.get_run(seeded["theirs"][0])
    assert pulled.hostname == "server-b" and "run bundle" in pulled.source
    again = sync(client, StoreRemote(server, "https://team.example"), page_size=2)
    assert (again.pulled, again.pushed, again.bundles_sent) == (0, 0, 0)
    assert _uuids(client) == _uuids(server)


class _CutAfter(StoreRemote):
    """The server's functions, with the connection cut (an injected fault) once `calls` calls are made."""

    def __init__(self, store: Store, calls: int) -> None:
        super().__init__(store, "https://team.example")
        self.left, self.calls = calls, []

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if len(self.calls) > self.left:
            raise ConnectionError("connection cut")

    def submit(self, data):  # the server stores the bundle, then the answer is lost
        answer = super().submit(data)
        self._call("submit")
        return answer

    def page(self, cursor, limit):
        self._call(f"page after {cursor}")
        return super().page(cursor, limit)

    def fetch(self, uuids):
        self._call("fetch")
        return super().fetch(uuids)


def test_a_sync_cut_short_goes_on_where_it_stopped_and_stores_nothing_twice(seeded, stores):
    client, server = stores
    cut = _CutAfter(server, 4)  # page, fetch, page, fetch: then the pull's last page is cut
    with pytest.raises(ConnectionError):
        sync(client, cut, page_size=1)
    assert len(_uuids(client)) == 5 + 2
    stood = client.sync_cursor("https://team.example")
    resumed = _CutAfter(server, 100)
    result = sync(client, resumed, page_size=1)
    assert resumed.calls[0] == f"page after {stood.pull_cursor}"  # not from the start
    assert (result.pulled, result.pushed) == (1, 5)
    push_cut = _CutAfter(server, 1)  # a second client pushes; the answer to its second bundle is lost
    fresh = Store(str(Path(client.url.removeprefix("sqlite:///")).with_name("other.db")))
    with fresh:
        fresh.hostname = "client-c"
        _measure(fresh, 3)
        with pytest.raises(ConnectionError):
            sync(fresh, push_cut, pull=False, page_size=1)
        again = sync(fresh, StoreRemote(server, "https://team.example"), pull=False, page_size=1)
        assert (again.bundles_sent, again.pushed) == (2, 1)  # the lost answer's bundle again: stored once
        assert fresh.sync_cursor("https://team.example").pull_cursor is None
    assert len(_uuids(server)) == 3 + 5 + 3
    with sqlite3.connect(server.url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("SELECT count(*) FROM submissions WHERE hostname = 'client-c'").fetchone() == (3,)


def test_a_sync_page_stops_before_a_run_still_running(seeded, stores):
    client, server = stores
    like = server.get_run(seeded["theirs"][0])
    running = server.create_run(task_name=like.task_name, task_version=like.task_version,
                                model_variant=like.model_variant, backend_name="null", scenario="single_stream",
                                card_hashes=_hashes(server, seeded), settings={}, quick=True, compliant=False)
    later = _measure(server, 1)[0]
    page = sync_page(server, None, 100)
    assert page.runs == tuple(seeded["theirs"]) and not page.more
    server.finish_run(running, status="failed", error="stopped")
    page = sync_page(server, page.cursor, 100)
    assert page.runs == (server.get_run(running).uuid, later)


def _hashes(store: Store, seeded) -> dict[str, str]:
    run = store.get_run(seeded["theirs"][0])
    return {kind: run.card_hashes[kind] for kind in ("task", "model", "backend", "system")}


def test_submission_and_sync_on_postgresql(seeded, stores, pg_store_url):
    client, _ = stores
    with Store(pg_store_url) as server:
        data = bundle_zip(client, seeded["mine"][:2])[0]
        first = receive_bundle(server, data, submitted_by="ana")
        assert len(first.imported) == 2 and receive_bundle(server, data).received_before
        result = sync(client, StoreRemote(server, "postgres"), page_size=2)
        assert (result.pulled, result.pushed) == (0, 3)
        assert _uuids(server) == sorted(seeded["mine"])
        assert _records(server, seeded["mine"][0]) == _records(client, seeded["mine"][0])
