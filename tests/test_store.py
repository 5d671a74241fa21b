"""Tests for runner.store: cards, runs, samples, migrations, corrupt files and crash recovery."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from runner.errors import InfersightError, RunNotFound, StoreError
from runner.store import DEFAULT_URL, LATEST_VERSION, MIGRATIONS, PERF_COLUMNS, Store, resolve_url
from runner.store.schema import canonical_json

REPO_ROOT = Path(__file__).resolve().parents[1]
KINDS = ("task", "model", "backend", "system")
HASHES = {kind: f"{kind}-hash" for kind in KINDS}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Path of a fresh SQLite store file under tmp_path."""
    return tmp_path / "infersight.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, db_path: Path):
    """An open Store (SQLite on db_path; PostgreSQL: a fresh database on the session's real server,
    see tests/_postgres.py) with one card of each kind stored."""
    url = str(db_path)
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_store_url")
    with Store(url) as opened:
        for kind in KINDS:
            opened.put_card(kind, {"kind": kind}, HASHES[kind], f"{kind} card")
        yield opened


def new_run(store: Store, **overrides) -> int:
    """Create a run with plain defaults; keyword arguments override them."""
    args = dict(task_name="digits", task_version="1.0", model_variant="fp32", backend_name="null",
                scenario="offline", card_hashes=HASHES, settings={"threads": 1}, quick=True,
                compliant=False)
    return store.create_run(**{**args, **overrides})


def perf_columns(n: int, offset: int = 0) -> dict[str, np.ndarray]:
    """Distinct, recognisable int64 columns of length n."""
    base = np.arange(offset, offset + n, dtype=np.int64)
    return {name: base * (i + 1) for i, name in enumerate(PERF_COLUMNS)}


# -- URLs ---------------------------------------------------------------------------------------

def test_resolve_url_explicit_env_default_and_path(monkeypatch):
    monkeypatch.delenv("INFERSIGHT_DB", raising=False)
    assert resolve_url(None) == DEFAULT_URL == "sqlite:///./infersight.db"
    monkeypatch.setenv("INFERSIGHT_DB", "postgresql://u@h/db")
    assert resolve_url(None) == "postgresql://u@h/db"
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"
    assert resolve_url("/tmp/a.db") == "sqlite:////tmp/a.db"
    assert resolve_url("rel/a.db") == "sqlite:///rel/a.db"


def test_sqlite_pragmas(db_path):
    with Store(str(db_path)) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


# -- cards --------------------------------------------------------------------------------------

def test_cards_round_trip_and_are_idempotent(store):
    card = {"name": "digits", "version": "1.0", "inputs": [{"shape": [1, 64]}]}
    assert store.put_card("task", card, "abc123", "digits") == "abc123"
    assert store.put_card("task", {"different": True}, "abc123", "digits") == "abc123"
    assert store.get_card("task", "abc123") == card
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT card FROM tasks WHERE hash = 'abc123'").scalar()
        count = conn.exec_driver_sql("SELECT count(*) FROM tasks").scalar()
    assert stored == canonical_json(card)
    assert count == 2  # the fixture's card and this one


def test_card_errors(store):
    with pytest.raises(ValueError, match="card kind"):
        store.put_card("gpu", {}, "h", "x")
    with pytest.raises(KeyError, match="no model card"):
        store.get_card("model", "missing")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(card=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_cards_hypothesis_round_trip(store, card):
    card_hash = str(abs(hash(canonical_json(card))))
    store.put_card("system", card, card_hash, "sys")
    assert store.get_card("system", card_hash) == card


# -- runs ---------------------------------------------------------------------------------------

def test_run_lifecycle(store):
    run_id = new_run(store, label="first", source="infersight 0.1.0 on test")
    run = store.get_run(run_id)
    assert run["status"] == "running" and run["pid"] == os.getpid()
    assert run["settings"] == {"threads": 1} and run["quick"] is True and run["compliant"] is False
    assert run["provenance"] == "measured" and run["label"] == "first"
    assert run["started_at"].tzinfo is not None and run["finished_at"] is None
    assert run["task_hash"] == HASHES["task"] and len(run["uuid"]) == 36
    store.finish_run(run_id, status="complete", validity="INVALID", validity_reasons=["too short"],
                     headline_metric="samples_per_second", headline_value=np.float64(1234.5),
                     headline_units="samples/s", summary={"latency_p90_ms": 1.5},
                     accuracy_metric="top1", accuracy_value=0.97, accuracy_target=0.95,
                     accuracy_passed=True)
    run = store.get_run(run_id)
    assert run["status"] == "complete" and run["validity"] == "INVALID"
    assert run["validity_reasons"] == ["too short"] and run["summary"] == {"latency_p90_ms": 1.5}
    assert run["headline_value"] == 1234.5 and run["accuracy_passed"] is True
    assert run["finished_at"] >= run["started_at"]


def test_run_validation(store):
    run_id = new_run(store)
    with pytest.raises(ValueError, match="finished status"):
        store.finish_run(run_id, status="running")
    with pytest.raises(ValueError, match="validity"):
        store.finish_run(run_id, status="complete", validity="valid")
    with pytest.raises(ValueError, match="provenance"):
        new_run(store, provenance="guessed")
    with pytest.raises(StoreError, match="model card nope is not stored"):
        new_run(store, card_hashes={**HASHES, "model": "nope"})
    with pytest.raises(RunNotFound):
        store.finish_run(9999, status="failed")


def test_list_runs_filters_newest_first(store):
    first = new_run(store, scenario="offline")
    second = new_run(store, scenario="single_stream", backend_name="onnxruntime")
    third = new_run(store, scenario="offline")
    store.finish_run(third, status="failed", error="boom")
    assert [r["id"] for r in store.list_runs()] == [third, second, first]
    assert [r["id"] for r in store.list_runs(scenario="offline")] == [third, first]
    assert [r["id"] for r in store.list_runs(backend="onnxruntime")] == [second]
    assert [r["id"] for r in store.list_runs(status="failed")] == [third]
    assert [r["id"] for r in store.list_runs(task="other")] == []
    assert len(store.list_runs(limit=2)) == 2
    assert store.list_runs(status="failed")[0]["settings"] == {"threads": 1}
    # runs measured here have no provenance to add: the same rows, with no 'imported' key
    assert store.list_runs(provenance=True) == store.list_runs()


def test_get_run_by_uuid_prefix_and_unknown(store):
    run_id = new_run(store)
    uuid = store.get_run(run_id)["uuid"]
    assert store.get_run(uuid)["id"] == run_id
    assert store.get_run(uuid[:4])["id"] == run_id
    assert store.get_run(uuid[:8].upper())["id"] == run_id
    assert store.get_run(str(run_id))["id"] == run_id
    for unknown in (424242, "ffffffff-0000", "zzzz", "ab"):
        with pytest.raises(RunNotFound, match="no run") as info:
            store.get_run(unknown)
        assert isinstance(info.value, InfersightError)


def test_mark_aborted_leaves_finished_runs_alone(store):
    running, done = new_run(store), new_run(store)
    store.finish_run(done, status="complete")
    store.mark_aborted(running, "interrupted by Ctrl-C")
    store.mark_aborted(done, "interrupted by Ctrl-C")
    assert store.get_run(running)["status"] == "aborted"
    assert store.get_run(running)["error"] == "interrupted by Ctrl-C"
    assert store.get_run(done)["status"] == "complete"


def test_recover_aborted_only_dead_local_processes(store):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    mine, dead, elsewhere = new_run(store), new_run(store), new_run(store)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE runs SET pid = {proc.pid} WHERE id = {dead}")
        conn.exec_driver_sql(f"UPDATE runs SET pid = {proc.pid}, hostname = 'other-host' "
                             f"WHERE id = {elsewhere}")
    assert store.recover_aborted() == [dead]
    run = store.get_run(dead)
    assert run["status"] == "aborted" and run["finished_at"] is not None
    assert run["error"] == f"process {proc.pid} on {store.hostname} ended before the run finished"
    assert store.get_run(mine)["status"] == "running"
    assert store.get_run(elsewhere)["status"] == "running"


# -- samples ------------------------------------------------------------------------------------

def test_perf_samples_round_trip_in_chunk_order(store):
    run_id = new_run(store)
    empty = store.read_perf_samples(run_id)
    assert set(empty) == set(PERF_COLUMNS)
    assert all(len(a) == 0 and a.dtype == np.int64 for a in empty.values())
    store.append_perf_samples(run_id, perf_columns(3))
    store.append_perf_samples(run_id, perf_columns(2, offset=3))
    back = store.read_perf_samples(run_id)
    for name, expected in perf_columns(5).items():
        np.testing.assert_array_equal(back[name], expected)
        assert back[name].dtype == np.int64
    frame = store.perf_dataframe(run_id)
    assert list(frame.columns) == list(PERF_COLUMNS) and len(frame) == 5
    assert frame["completed_ns"].tolist() == (np.arange(5) * 5).tolist()


def test_perf_samples_rejects_bad_columns(store):
    run_id = new_run(store)
    with pytest.raises(ValueError, match="need the columns"):
        store.append_perf_samples(run_id, {"sample_index": np.arange(3)})
    with pytest.raises(ValueError, match="may have"):
        store.append_perf_samples(run_id, {**perf_columns(3), "tokens_per_s": np.arange(3)})
    with pytest.raises(ValueError, match="differ in length"):
        store.append_perf_samples(run_id, {**perf_columns(3), "issued_ns": np.arange(2)})
    with pytest.raises(ValueError, match="integer array"):
        store.append_perf_samples(run_id, {**perf_columns(3), "issued_ns": np.ones(3)})
    with pytest.raises(RunNotFound):
        store.append_perf_samples(9999, perf_columns(3))


def test_perf_samples_optional_columns_round_trip(store):
    """stream_id / first_token_ns / output_tokens come back when every chunk has them."""
    plain, streamed = new_run(store), new_run(store)
    store.append_perf_samples(plain, perf_columns(4))
    assert set(store.read_perf_samples(plain)) == set(PERF_COLUMNS)
    extra = {"stream_id": np.array([0, 1, 0, 1]), "first_token_ns": np.arange(4) * 7,
             "output_tokens": np.full(4, 16)}
    store.append_perf_samples(streamed, {**perf_columns(4), **extra})
    store.append_perf_samples(streamed, {**perf_columns(4), **extra})
    back = store.read_perf_samples(streamed)
    assert back["stream_id"].tolist() == [0, 1, 0, 1] * 2
    assert back["output_tokens"].sum() == 128
    assert list(store.perf_dataframe(streamed).columns)[-3:] == ["stream_id", "first_token_ns", "output_tokens"]


def test_perf_samples_million_rows(store):
    run_id = new_run(store)
    columns = perf_columns(1_000_000)
    store.append_perf_samples(run_id, columns)
    back = store.read_perf_samples(run_id)
    assert all(np.array_equal(back[name], columns[name]) for name in PERF_COLUMNS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(0, 200))
def test_perf_samples_hypothesis_round_trip(store, data, n):
    columns = {name: data.draw(hnp.arrays(np.int64, n)) for name in PERF_COLUMNS}
    split = data.draw(st.integers(0, n))
    run_id = new_run(store)
    store.append_perf_samples(run_id, {k: v[:split] for k, v in columns.items()})
    store.append_perf_samples(run_id, {k: v[split:] for k, v in columns.items()})
    back = store.read_perf_samples(run_id)
    for name in PERF_COLUMNS:
        np.testing.assert_array_equal(back[name], columns[name])


def test_accuracy_samples_round_trip(store):
    run_id = new_run(store)
    store.put_accuracy_samples(run_id, [2, 0, 1], [7, np.int64(3), {"label": "cat"}],
                               [7, 4, {"label": "cat"}], [True, False, np.bool_(True)])
    assert store.read_accuracy_samples(run_id) == [
        {"sample_index": 0, "prediction": 3, "reference": 4, "correct": False},
        {"sample_index": 1, "prediction": {"label": "cat"}, "reference": {"label": "cat"}, "correct": True},
        {"sample_index": 2, "prediction": 7, "reference": 7, "correct": True},
    ]
    other = new_run(store)
    store.put_accuracy_samples(other, np.arange(2), [np.array([0.5, 0.25]), "x"], [[1, 0], "y"], None)
    assert [s["correct"] for s in store.read_accuracy_samples(other)] == [None, None]
    assert store.read_accuracy_samples(other)[0]["prediction"] == [0.5, 0.25]
    with pytest.raises(ValueError, match="equal lengths"):
        store.put_accuracy_samples(other, [5, 6], [1], [1, 2], None)


# -- migrations, corrupt files, crashes -----------------------------------------------------------

def test_migrations_recorded_once(db_path):
    with Store(str(db_path)) as store:
        assert store.schema_version() == LATEST_VERSION
    with Store(f"sqlite:///{db_path}") as store:
        assert store.schema_version() == LATEST_VERSION
    conn = sqlite3.connect(db_path)
    versions = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    conn.close()
    assert versions == [version for version, _ in MIGRATIONS] and versions[-1] == LATEST_VERSION


def test_newer_schema_is_refused(db_path):
    Store(str(db_path)).close()
    conn = sqlite3.connect(db_path)
    conn.execute("INSERT INTO schema_version VALUES (999, '2030-01-01 00:00:00')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 999"):
        Store(str(db_path))


def test_corrupt_file_gives_store_error(db_path):
    db_path.write_bytes(b"this is not a database, just garbage bytes\x00\xff" * 100)
    with pytest.raises(StoreError) as info:
        Store(str(db_path))
    message = str(info.value)
    assert str(db_path) in message and "not a readable SQLite database" in message
    assert "\n" not in message and info.value.__cause__ is None


def test_missing_directory_gives_store_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open"):
        Store(str(tmp_path / "no" / "such" / "dir.db"))


def test_sigkill_mid_run_leaves_aborted_run_with_samples(db_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        import numpy as np
        from runner.store import Store, PERF_COLUMNS
        store = Store({str(db_path)!r})
        for kind in {KINDS!r}:
            store.put_card(kind, {{"kind": kind}}, kind + "-hash", kind)
        run_id = store.create_run(task_name="digits", task_version="1", model_variant="v",
                                  backend_name="null", scenario="offline",
                                  card_hashes={HASHES!r}, settings={{}}, quick=True, compliant=False)
        store.append_perf_samples(run_id, {{name: np.arange(1000) for name in PERF_COLUMNS}})
        print("ready", run_id, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line[0] == "ready", line
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    run_id = int(line[1])
    with Store(str(db_path)) as store:
        run = store.get_run(run_id)
        assert run["status"] == "aborted" and run["pid"] == proc.pid
        assert f"process {proc.pid}" in run["error"]
        samples = store.read_perf_samples(run_id)
        np.testing.assert_array_equal(samples["completed_ns"], np.arange(1000))
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
