"""Runs measured on another machine, stored from a checked run bundle in one transaction, and the
bundles received (submissions) and sync cursors beside them (used by Store; runner/bundles checks the bundle).

A bundle is stored whole or not at all: its cards, runs, per-query chunks, accuracy records and its
submissions row go in one transaction, so a process killed half-way leaves nothing, and a retry stores it
once. A bundle received before (same sha256) stores nothing and answers what it stored the first time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, text, update

from runner.store._imported import insert_if_absent
from runner.store._perf import perf_arrays, write_chunks
from runner.store.schema import CARD_TABLES, accuracy_samples, runs, submissions, sync_state

__all__ = ["BundledRunRows", "Received", "store_bundle", "received", "runs_after", "SyncCursor", "get_cursor",
           "set_cursor"]

_PG_LOCK_KEY = 0x1F5E_B0DE  # serialises bundle writers on PostgreSQL, so run ids grow in commit order


@dataclass(frozen=True)
class BundledRunRows:
    """One run of a bundle as rows: cards {kind: (card, hash, name)}, the runs row's values (uuid included),
    per-query columns and accuracy records (dicts of sample_index, prediction, reference, correct)."""

    cards: Mapping[str, tuple[Mapping[str, Any], str, str]]
    values: Mapping[str, Any]
    columns: Mapping[str, Any]
    accuracy: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Received:
    """A bundle in the store: its submission id, the local ids of the runs it stored and of those present
    before, the uuids it stored, the host it was exported from, and whether this call stored it (False:
    received before, nothing stored now)."""

    submission_id: int
    stored: tuple[int, ...]
    present: tuple[int, ...]
    stored_uuids: tuple[str, ...]
    hostname: str
    new: bool


def store_bundle(conn: Connection, sha256: str, rows: Sequence[BundledRunRows], submission: Mapping[str, Any],
                 now: datetime) -> Received:
    """Store a bundle's runs not stored yet and its submissions row (inside the caller's transaction)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    before = received(conn, sha256)
    if before is not None:
        return before
    ids = _ids(conn, [row.values["uuid"] for row in rows])
    stored = {}
    for row in rows:
        if row.values["uuid"] not in ids:
            stored[row.values["uuid"]] = _insert_run(conn, row, now)
    values = {**dict(submission), "bundle_sha256": sha256, "runs": [row.values["uuid"] for row in rows],
              "stored": list(stored), "received_at": now}
    submission_id = conn.execute(submissions.insert().values(**values)).inserted_primary_key[0]
    return Received(submission_id, tuple(stored.values()), tuple(ids.values()), tuple(stored), values["hostname"],
                    True)


def received(conn: Connection, sha256: str) -> Received | None:
    """The bundle of this sha256 as received before, or None."""
    row = conn.execute(select(submissions).where(submissions.c.bundle_sha256 == sha256)).mappings().first()
    if row is None:
        return None
    ids = _ids(conn, row["runs"])
    stored = set(row["stored"])
    return Received(row["id"], tuple(ids[u] for u in row["runs"] if u in stored and u in ids),
                    tuple(ids[u] for u in row["runs"] if u not in stored and u in ids), tuple(row["stored"]),
                    row["hostname"], False)


def _ids(conn: Connection, uuids: Sequence[str]) -> dict[str, int]:
    """{uuid: local run id} of the uuids the store holds."""
    found = conn.execute(select(runs.c.uuid, runs.c.id).where(runs.c.uuid.in_(list(uuids)))).all()
    return {uuid: run_id for uuid, run_id in found}


def _insert_run(conn: Connection, row: BundledRunRows, now: datetime) -> int:
    for kind, (card, digest, name) in row.cards.items():
        insert_if_absent(conn, CARD_TABLES[kind], dict(hash=digest, name=name, card=dict(card), created_at=now))
    values = {**dict(row.values), "pid": None, "search_id": None}
    run_id = conn.execute(runs.insert().values(**values)).inserted_primary_key[0]
    write_chunks(conn, run_id, perf_arrays(row.columns), 1_000_000)
    if row.accuracy:
        conn.execute(accuracy_samples.insert(), [{**dict(sample), "run_id": run_id} for sample in row.accuracy])
    return run_id


def runs_after(conn: Connection, after: int, limit: int) -> tuple[list[str], int, bool]:
    """A page for sync: the uuids of finished measured runs with ids above `after` (at most `limit` rows
    looked at), the id to continue after, and whether more rows follow. The page ends before a run still
    running (it is sent once finished) and passes over runs imported from outside (MLPerf results)."""
    rows = conn.execute(select(runs.c.id, runs.c.uuid, runs.c.status, runs.c.provenance)
                        .where(runs.c.id > after).order_by(runs.c.id).limit(limit)).all()
    uuids, cursor = [], after
    for run_id, uuid, status, provenance in rows:
        if status == "running":
            return uuids, cursor, False
        cursor = run_id
        if provenance == "measured":
            uuids.append(uuid)
    return uuids, cursor, len(rows) == limit


@dataclass(frozen=True)
class SyncCursor:
    """Where sync stands with a server: its cursor after the last page pulled, the last local run id pushed."""

    pull_cursor: str | None = None
    pushed_run_id: int = 0


def get_cursor(conn: Connection, server: str) -> SyncCursor:
    row = conn.execute(select(sync_state).where(sync_state.c.server == server)).mappings().first()
    return SyncCursor() if row is None else SyncCursor(row["pull_cursor"], row["pushed_run_id"])


def set_cursor(conn: Connection, server: str, cursor: SyncCursor, now: datetime) -> None:
    values = dict(pull_cursor=cursor.pull_cursor, pushed_run_id=cursor.pushed_run_id, updated_at=now)
    done = conn.execute(update(sync_state).where(sync_state.c.server == server).values(**values))
    if done.rowcount == 0:
        conn.execute(sync_state.insert().values(server=server, **values))
