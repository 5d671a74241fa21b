"""The store under races, full disks, read-only access and damage; its compressed per-query logs."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from infersight.cli import main
from runner.errors import DamagedRowWarning, StoreError
from runner.run import _until_stored
from runner.store import LATEST_VERSION, PERF_COLUMNS, Store
from runner.store.schema import OPTIONAL_PERF_COLUMNS
from runner.store._perf import MINUS_REFERENCE, PLANES, _chunk, decode, encode, encode_chunk

KINDS = ("task", "model", "backend", "system")
HASHES = {kind: kind[0] * 64 for kind in KINDS}


def _store(url: str) -> Store:
    store = Store(url)
    for kind in KINDS:
        store.put_card(kind, {"kind": kind}, HASHES[kind], kind)
    return store


def _run(store: Store, **overrides) -> int:
    args = dict(task_name="digits", task_version="1.0", model_variant="fp32", backend_name="null",
                scenario="offline", card_hashes=HASHES, settings={}, quick=True, compliant=False)
    return store.create_run(**{**args, **overrides})


def _timestamps(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Server-like records: random sample ids, Poisson arrivals at 5,000 QPS, ~0.1 ms latencies."""
    rng = np.random.default_rng(seed)
    scheduled = np.cumsum(rng.exponential(2e5, n)).astype(np.int64)
    issued = scheduled + rng.integers(1_000, 20_000, n)
    return {"sample_index": rng.integers(0, 1797, n), "query_index": np.arange(n), "scheduled_ns": scheduled,
            "issued_ns": issued, "completed_ns": issued + rng.integers(50_000, 150_000, n)}


_INT64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 300).flatmap(lambda n: st.tuples(arrays(np.int64, n, elements=_INT64),
                                                      arrays(np.int64, n, elements=_INT64))))
def test_the_column_codec_round_trips_any_int64_column_exactly(pair):
    values, reference = pair
    assert np.array_equal(decode(encode(values), len(values)), values)
    stored = encode(values, reference)  # may be stored as the difference from its reference column
    assert np.array_equal(decode(stored, len(values), reference), values)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 200).flatmap(lambda n: st.tuples(*[arrays(np.int64, n, elements=_INT64)] * 3)))
def test_a_chunk_stored_against_its_reference_columns_reads_back_exactly(columns):
    records = {**_timestamps(len(columns[0])), "scheduled_ns": columns[0], "issued_ns": columns[1],
               "completed_ns": columns[2]}
    row = {**encode_chunk(records), "n": len(columns[0]), "run_id": 1, "chunk": 0}
    back = _chunk({**row, **{name: None for name in OPTIONAL_PERF_COLUMNS}}, "test")
    assert all(np.array_equal(back[name], records[name]) for name in PERF_COLUMNS)


def test_a_column_stored_against_a_damaged_reference_is_named(tmp_path):
    db = tmp_path / "s.db"
    with _store(str(db)) as store:
        run_id = _run(store)
        store.append_perf_samples(run_id, _timestamps(1000))
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT issued_ns, completed_ns FROM perf_samples").fetchone()
        assert [data[1] for data in stored] == [MINUS_REFERENCE] * 2  # lateness and latency, not timestamps
        conn.execute("UPDATE perf_samples SET scheduled_ns = x'03'")
    with Store(str(db)) as store, pytest.raises(StoreError, match=f"perf_samples run {run_id} chunk 0 column "
                                                                  f"scheduled_ns is damaged"):
        store.read_perf_samples(run_id)


def test_a_million_records_write_fast_and_take_what_their_columns_hold(tmp_path):
    with _store(str(tmp_path / "s.db")) as store:
        run_id, records = _run(store), _timestamps(1_000_000)
        started = time.perf_counter()
        store.append_perf_samples(run_id, records)
        seconds = time.perf_counter() - started
        back = store.read_perf_samples(run_id)
    assert all(np.array_equal(back[name], records[name]) for name in PERF_COLUMNS)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        sizes = {name: conn.execute(f"SELECT sum(length({name})) FROM perf_samples").fetchone()[0] / 1e6
                 for name in PERF_COLUMNS}
    # the information in these columns (benchmarks/reliability.py): log2 of 1,797 sample ids, of e x 0.2 ms
    # gaps, of 19,000 lateness and 100,000 latency values, in bytes: 1.35, 2.38, 1.78, 2.08 (7.59 together)
    bound = {"sample_index": 1.35, "scheduled_ns": 2.38, "issued_ns": 1.78, "completed_ns": 2.08}
    assert all(sizes[name] <= bound[name] * 1.1 for name in bound), sizes
    assert sizes["query_index"] < 0.01 and sum(sizes.values()) < 8, sizes  # 40 bytes a record raw, 9.86 in v5
    assert seconds < 5, seconds  # ~0.3 s on a quiet core; generous for a loaded machine


def test_an_empty_store_is_small(tmp_path):
    Store(str(tmp_path / "s.db")).close()
    assert (tmp_path / "s.db").stat().st_size < 256 * 1024


def test_the_version_5_migration_compresses_raw_chunks(tmp_path):
    db = tmp_path / "s.db"
    with _store(str(db)) as store:
        run_id = _run(store)
        records = _timestamps(1000)
    with sqlite3.connect(db) as conn:  # a version-4 store: raw little-endian int64 chunks
        conn.execute("DELETE FROM schema_version WHERE version >= 5")  # and every later one
        conn.execute("INSERT INTO perf_samples (run_id, chunk, n, sample_index, query_index, scheduled_ns, "
                     "issued_ns, completed_ns) VALUES (?, 0, 1000, ?, ?, ?, ?, ?)",
                     (run_id, *[records[name].astype("<i8").tobytes() for name in PERF_COLUMNS]))
    with Store(str(db)) as store:
        assert store.schema_version() == LATEST_VERSION
        back = store.read_perf_samples(run_id)
    assert all(np.array_equal(back[name], records[name]) for name in PERF_COLUMNS)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT length(scheduled_ns) FROM perf_samples").fetchone()[0] < 4000


def _v5_column(values: np.ndarray) -> bytes:
    """A column as schema version 5 stored it: tag 1 (deltas) or 2, zstd of the 8 shuffled byte planes."""
    tag, body = 2, values
    if len(values) > 1 and np.all(values[1:] >= values[:-1]):
        tag, body = 1, np.diff(values, prepend=0)
    return bytes([tag]) + zstandard.ZstdCompressor(level=1).compress(body.astype("<i8").view(np.uint8)
                                                                      .reshape(-1, 8).T.tobytes())


def test_the_version_6_migration_rewrites_version_5_chunks_exactly_and_smaller(tmp_path):
    db = tmp_path / "s.db"
    with _store(str(db)) as store:
        run_id = _run(store)
    streams = {"stream_id": np.arange(2000) % 4, "first_token_ns": np.arange(2000) * 7,
               "output_tokens": np.ones(2000)}
    chunks = [_timestamps(5000, seed=1), _timestamps(3, seed=2), {**_timestamps(2000, seed=3), **streams}]
    with sqlite3.connect(db) as conn:  # a version-5 store
        conn.execute("DELETE FROM schema_version WHERE version >= 6")  # and every later one
        for number, records in enumerate(chunks):
            names = list(records)
            conn.execute(f"INSERT INTO perf_samples (run_id, chunk, n, {', '.join(names)}) VALUES "
                         f"(?, ?, ?, {', '.join('?' * len(names))})",
                         (run_id, number, len(records["query_index"]),
                          *[_v5_column(np.asarray(records[name], dtype=np.int64)) for name in names]))
        before = conn.execute("SELECT sum(length(scheduled_ns) + length(issued_ns) + length(completed_ns)) "
                              "FROM perf_samples").fetchone()[0]
    with Store(str(db)) as store:
        assert store.schema_version() == LATEST_VERSION
        back = store.read_perf_samples(run_id)
    for name in PERF_COLUMNS:
        assert np.array_equal(back[name], np.concatenate([c[name] for c in chunks])), name
    with sqlite3.connect(db) as conn:
        tags = conn.execute("SELECT DISTINCT substr(issued_ns, 1, 1), substr(first_token_ns, 1, 1) "
                            "FROM perf_samples").fetchall()
        after = conn.execute("SELECT sum(length(scheduled_ns) + length(issued_ns) + length(completed_ns)) "
                             "FROM perf_samples").fetchone()[0]
    assert {t[0] for t in tags} == {bytes([PLANES])} and bytes([PLANES]) in {t[1] for t in tags}
    assert after < 0.85 * before, (before, after)


def test_damaged_rows_are_named_not_passed_on(tmp_path):
    db = tmp_path / "s.db"
    with _store(str(db)) as store:
        ids = [_run(store) for _ in range(4)]
        store.append_perf_samples(ids[0], _timestamps(100))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE perf_samples SET completed_ns = x'01ff00' WHERE run_id = ?", (ids[0],))
        conn.execute("UPDATE runs SET status = 'zzz' WHERE id = ?", (ids[1],))
        conn.execute("UPDATE runs SET validity = 'BANANA' WHERE id = ?", (ids[2],))
        conn.execute("UPDATE runs SET summary = '{not json' WHERE id = ?", (ids[3],))
        conn.execute("UPDATE tasks SET card = '[1, 2' WHERE hash = ?", (HASHES["task"],))
    with Store(str(db)) as store:
        with pytest.raises(StoreError, match=f"perf_samples run {ids[0]} chunk 0 column completed_ns is damaged"):
            store.read_perf_samples(ids[0])
        for run_id, column in zip(ids[1:], ("status 'zzz'", "validity 'BANANA'", "summary holds text")):
            with pytest.raises(StoreError, match=f"run {run_id} is damaged: runs.{column}"):
                store.get_run(run_id)
        with pytest.warns(DamagedRowWarning) as said:
            listed = store.list_runs()
        assert [r.id for r in listed] == [ids[0]]  # the rows that read back are listed
        problems = ("status 'zzz' is not one of running, complete, failed, aborted",
                    "validity 'BANANA' is not one of None, VALID, INVALID, LOADGEN_LIMIT",
                    "summary holds text that is not JSON ('{not json')")
        assert sorted(str(w.message) for w in said) == sorted(
            f"sqlite:///{db}: run {run_id} is damaged: runs.{problem} (left out of the list)"
            for run_id, problem in zip(ids[1:], problems))
        with pytest.raises(StoreError, match=f"task card {HASHES['task']} is damaged"):
            store.get_card("task", HASHES["task"])


def test_runs_lists_the_readable_rows_and_names_each_damaged_one(tmp_path, capsys):
    db = tmp_path / "s.db"
    with _store(str(db)) as store:
        good, bad = _run(store), _run(store)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET status = 'zzz' WHERE id = ?", (bad,))
    main(["runs", "--json", "--db", str(db)])
    written = capsys.readouterr()
    assert [r["id"] for r in json.loads(written.out)] == [good]
    assert " ".join(written.err.split()) == (f"warning: sqlite:///{db}: run {bad} is damaged: runs.status 'zzz' "
                                             f"is not one of running, complete, failed, aborted (left out of the "
                                             f"list)")


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_store_opens_for_reading_and_refuses_writes(tmp_path, what):
    folder = tmp_path / "ro"
    folder.mkdir()
    with _store(str(folder / "s.db")) as store:
        run_id = _run(store)
        store.append_perf_samples(run_id, _timestamps(10))
    target = folder / "s.db" if what == "file" else folder
    target.chmod(0o444 if what == "file" else 0o555)
    try:
        with Store(str(folder / "s.db")) as store:
            assert store.read_only
            assert [r.id for r in store.list_runs()] == [run_id]
            assert len(store.read_perf_samples(run_id)["completed_ns"]) == 10
            with pytest.raises(StoreError, match="read-only"):
                _run(store)
    finally:
        target.chmod(0o755)


def test_a_read_only_store_behind_the_schema_says_how_to_upgrade(tmp_path):
    db = tmp_path / "s.db"
    Store(str(db)).close()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM schema_version WHERE version >= 5")  # and every later one
    db.chmod(0o444)
    with pytest.raises(StoreError, match=f"read-only and at schema version 4; this infersight needs version "
                                         f"{LATEST_VERSION}"):
        Store(str(db))


def _fill(store: Store) -> None:
    """Injected fault: no page may be added to any connection's database (SQLite's 'disk is full')."""
    store.engine.dispose()
    from sqlalchemy import event

    @event.listens_for(store.engine, "connect")
    def _cap(dbapi_connection, _record):
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")


def test_on_a_full_disk_reads_work_and_a_failed_run_records_why_once_space_returns(tmp_path):
    db = tmp_path / "s.db"
    with _store(str(db)) as store:
        run_id = _run(store)
        _fill(store)
        with pytest.raises(StoreError, match="disk is full"):
            store.append_perf_samples(run_id, _timestamps(200_000))
        assert store.get_run(run_id).status == "running" and store.list_runs()
        tries = []

        def finish() -> None:
            tries.append(1)
            if len(tries) < 3:  # space returns on the third try
                raise StoreError("sqlite:///s.db: the disk is full (database or disk is full)")
            store.finish_run(run_id, status="failed", error="StoreError: the disk is full")

        said = []
        _until_stored(finish, said.append, wait_s=10)
        assert len(tries) == 3 and store.get_run(run_id).status == "failed" and "disk is full" in said[0]


def test_a_real_full_disk_keeps_reads_working(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs is not permitted here (needs root or CAP_SYS_ADMIN)")
    try:
        with _store(str(mount / "s.db")) as store:
            run_id = _run(store)
            with pytest.raises(StoreError, match="disk is full"):
                for seed in range(40):
                    store.append_perf_samples(run_id, _timestamps(200_000, seed))
            assert store.get_run(run_id).status == "running"
        other = subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'fill'}", "bs=64k"], capture_output=True)
        assert other.returncode != 0  # the disk is now completely full
        with Store(str(mount / "s.db")) as store:  # opens, lists and reads on a full disk
            assert store.list_runs()[0].id == run_id and store.read_perf_samples(run_id)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _import_same(url: str, worker: int, count: int, queue) -> None:
    """One importer: store `count` imported results (the same ones every importer stores)."""
    try:
        store = Store(url)
        created = 0
        for i in range(count):
            cards = {kind: ({"kind": kind, "i": i}, f"{kind[0]}{i:063d}", kind) for kind in KINDS}
            run = dict(uuid=f"00000000-0000-0000-0000-{i:012d}", task_name="resnet50", task_version="4.1",
                       model_variant="x", backend_name="mlperf", scenario="Offline", status="complete",
                       quick=False, compliant=True, provenance="imported", source="mlperf v4.1",
                       hostname="h", started_at=_fixed_time())
            imported = dict(source="mlperf", round="v4.1", division="closed", submitter="s", availability="a",
                            system_name="sys", accelerator="acc", model="resnet50", scenario="Offline",
                            source_path=f"closed/s/results/{i}", compliance={})
            created += store.put_imported_run(cards=cards, run=run, imported=imported)[1]
        store.close()
        queue.put((worker, created, None))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a user-visible error
        queue.put((worker, 0, f"{type(exc).__name__}: {exc}"))


def _fixed_time():
    from datetime import datetime, timezone

    return datetime(2024, 8, 28, tzinfo=timezone.utc)


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_importers_of_one_tree_all_succeed_and_store_each_result_once(request, tmp_path, engine):
    url = request.getfixturevalue("pg_store_url") if engine == "postgresql" else str(tmp_path / "s.db")
    Store(url).close()
    ctx = multiprocessing.get_context("fork")
    queue, count = ctx.Queue(), 15
    workers = [ctx.Process(target=_import_same, args=(url, w, count, queue)) for w in range(4)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert [r[2] for r in results] == [None] * 4, results
    assert sum(r[1] for r in results) == count
    with Store(url) as store:
        assert len(store.list_runs(limit=None)) == count


def test_show_and_runs_on_a_store_with_a_dead_running_run_open_without_writing(tmp_path):
    db = tmp_path / "s.db"
    with _store(str(db)) as store:
        run_id = _run(store)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", (run_id,))
    os.chmod(db, 0o444)
    with Store(str(db)) as store:  # read-only: no recovery attempted, the run is listed as it is
        assert store.get_run(run_id).status == "running"
    os.chmod(db, 0o644)
    with Store(str(db)) as store:
        assert store.get_run(run_id).status == "aborted"


def test_naming_an_open_store_never_drops_sqlite_s_locks(tmp_path):
    """Closing any descriptor of a database file drops this process's POSIX locks on it; resolving --db must
    not open the file, or another process's close takes itself for the last user and deletes the WAL."""
    import sys

    from runner.store import resolve_url

    db = tmp_path / "s.db"
    Store(str(db)).close()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE t (x)")
        holder.execute("INSERT INTO t VALUES (1)")
        resolve_url(str(db))
        Store(str(db)).close()
        subprocess.run([sys.executable, "-c", f"import sqlite3; sqlite3.connect({str(db)!r}).execute("
                        "'SELECT count(*) FROM t').fetchall()"], check=True)
        assert Path(f"{db}-wal").exists()  # the other process saw this one still using the store
        assert holder.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        holder.close()
