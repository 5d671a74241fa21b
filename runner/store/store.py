"""The results store: cards, runs, per-query performance samples and accuracy records.

Every write is its own transaction, so a process killed mid-run leaves a readable store;
the next `Store(...)` marks its run aborted and keeps the samples already written. Opening
writes nothing when there is nothing to migrate or recover, so a store on a full disk, or a
read-only one (its file or folder not writable), opens for reading. Rows read back are checked
(status, validity, JSON) and a damaged one is named in a StoreError.
Methods block on the database and are meant for the thread that runs the benchmark.
"""

from __future__ import annotations

import os
import socket
import uuid as uuidlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, Table, select, update

from runner.errors import RunNotFound, StoreError
from runner.store import _bundled, _imported, _lookup, _recovery
from runner.store._bundled import BundledRunRows, Received, SyncCursor
from runner.store._imported import insert_if_absent
from runner.store._checks import (PROVENANCES, RUN_STATUSES, VALIDITIES, checked_card, checked_run, id_in_range,
                                  readable_runs)
from runner.store._engine import (display_url, interrupts_deferred, make_engine, resolve_url, sqlite_read_only,
                                  translate_errors)
from runner.store._perf import perf_arrays, read_chunks, write_chunks
from runner.store.records import RunRecord
from runner.store.migrations import LATEST_VERSION, apply_migrations, check_not_newer, current_version
from runner.store.schema import CARD_TABLES, accuracy_samples, runs

if TYPE_CHECKING:
    import pandas

__all__ = ["Store", "RunRecord", "RUN_STATUSES", "VALIDITIES", "PROVENANCES", "CHUNK_ROWS"]

CHUNK_ROWS = 1_000_000  # most per-query records in one perf_samples row


def _now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def _check(value: Any, allowed: Sequence, what: str) -> None:
    """Raise ValueError unless value is one of allowed."""
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


class Store:
    """A results database at a URL (SQLite file or PostgreSQL), migrated to the latest schema on open
    (unless read-only: `read_only` is True for a SQLite file this process may not write)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.read_only = sqlite_read_only(self.url)
        self.engine = make_engine(self.url, read_only=self.read_only)
        self.hostname = socket.gethostname()
        try:
            with self._errors():
                self._open()
        except BaseException:
            self.engine.dispose()
            raise

    def _open(self) -> None:
        """Migrate if the schema is behind (never on a read-only store), then recover dead runs.

        Nothing is written when there is nothing to do, so a store on a full disk still opens for reading.
        """
        with self.engine.connect() as conn:
            current = current_version(conn)
        if current == LATEST_VERSION or current > LATEST_VERSION:
            check_not_newer(current, display_url(self.url))
        elif self.read_only:
            raise StoreError(f"{display_url(self.url)}: the store is read-only and at schema version {current}; "
                             f"this infersight needs version {LATEST_VERSION}: open it once with write access "
                             f"to upgrade it")
        else:
            apply_migrations(self.engine, display_url(self.url))
        if not self.read_only:
            try:
                self.recover_aborted()
            except StoreError:
                pass  # a full disk: the dead runs are marked on a later open; reads still work

    def __repr__(self) -> str:
        return f"Store({display_url(self.url)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every pooled connection."""
        with interrupts_deferred():
            self.engine.dispose()

    # -- transactions ---------------------------------------------------------------------------

    def _errors(self):
        """Context manager turning database failures into StoreError naming this store."""
        return translate_errors(self.url)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """`with store.transaction() as conn:` one write transaction (BEGIN IMMEDIATE on SQLite), committed
        when the block ends without an error; `write=False`: a consistent snapshot for reading. Failures
        become a StoreError naming the store. sweeps.py and searches.py keep their tables through this."""
        if not write:
            with self._snapshot() as conn:
                yield conn
            return
        if self.read_only:
            raise StoreError(f"{display_url(self.url)}: the store is read-only (its file or folder is not "
                             f"writable); it can be listed and reported, not written")
        with self._errors():
            conn = self.engine.execution_options(infersight_write=True).connect()
            try:
                with interrupts_deferred():
                    transaction = conn.begin()
                yield conn
                with interrupts_deferred():
                    transaction.commit()
            finally:
                with interrupts_deferred():
                    conn.close()  # rolls back what was not committed

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """One read transaction: a consistent snapshot."""
        with self._errors():
            conn = self.engine.connect()
            try:
                yield conn
            finally:
                with interrupts_deferred():
                    conn.close()

    def schema_version(self) -> int:
        """Highest migration version applied to this store."""
        with self.transaction(write=False) as conn:
            return current_version(conn)

    # -- cards ----------------------------------------------------------------------------------

    def put_card(self, kind: str, card: Mapping[str, Any], card_hash: str, name: str) -> str:
        """Store a card once under its hash (a second put of the same hash is a no-op); return the hash."""
        table = self._card_table(kind)
        values = dict(hash=card_hash, name=name, card=dict(card), created_at=_now())
        with self.transaction() as conn:
            insert_if_absent(conn, table, values)
        return card_hash

    def get_card(self, kind: str, card_hash: str) -> dict[str, Any]:
        """The card dict stored under a hash; KeyError if there is none."""
        table = self._card_table(kind)
        with self.transaction(write=False) as conn:
            card = conn.execute(select(table.c.card).where(table.c.hash == card_hash)).scalar()
        if card is None:
            raise KeyError(f"no {kind} card with hash {card_hash} in {display_url(self.url)}")
        return checked_card(card, kind, card_hash, display_url(self.url))

    @staticmethod
    def _card_table(kind: str) -> Table:
        """The table holding cards of a kind."""
        _check(kind, tuple(CARD_TABLES), "card kind")
        return CARD_TABLES[kind]

    # -- runs -----------------------------------------------------------------------------------

    def create_run(self, *, task_name: str, task_version: str, model_variant: str, backend_name: str,
                   scenario: str, card_hashes: Mapping[str, str], settings: Mapping[str, Any],
                   quick: bool, compliant: bool, provenance: str = "measured", source: str = "",
                   label: str | None = None) -> int:
        """Record a new run with status 'running' (this pid and host); return its id."""
        _check(provenance, PROVENANCES, "provenance")
        hashes = {f"{kind}_hash": card_hashes[kind] for kind in CARD_TABLES if kind in card_hashes}
        if len(hashes) != len(CARD_TABLES):
            raise ValueError(f"card_hashes needs keys {sorted(CARD_TABLES)}, got {sorted(card_hashes)}")
        values = dict(uuid=str(uuidlib.uuid4()), task_name=task_name, task_version=task_version,
                      model_variant=model_variant, backend_name=backend_name, scenario=scenario,
                      status="running", settings=dict(settings), quick=bool(quick),
                      compliant=bool(compliant), provenance=provenance, source=source, label=label,
                      hostname=self.hostname, pid=os.getpid(), started_at=_now(), **hashes)
        with self.transaction() as conn:
            self._require_cards(conn, card_hashes)
            return conn.execute(runs.insert().values(**values)).inserted_primary_key[0]

    def _require_cards(self, conn: Connection, card_hashes: Mapping[str, str]) -> None:
        """Raise StoreError naming any card hash that is not stored yet."""
        for kind, table in CARD_TABLES.items():
            found = conn.execute(select(table.c.hash).where(table.c.hash == card_hashes[kind])).first()
            if found is None:
                raise StoreError(f"{display_url(self.url)}: {kind} card {card_hashes[kind]} is not "
                                 f"stored; put_card it before create_run")

    def record_result(self, run_id: int, *, validity: str | None = None, validity_reasons: Sequence[str] = (),
                      headline_metric: str | None = None, headline_value: float | None = None,
                      headline_units: str | None = None, summary: Mapping[str, Any] | None = None,
                      accuracy_metric: str | None = None, accuracy_value: float | None = None,
                      accuracy_target: float | None = None, accuracy_passed: bool | None = None) -> None:
        """Record a run's validity, headline and accuracy; its status is left as it is."""
        _check(validity, VALIDITIES, "validity")
        values = dict(validity=validity, validity_reasons=list(validity_reasons),
                      headline_metric=headline_metric, headline_value=_float(headline_value),
                      headline_units=headline_units, summary=None if summary is None else dict(summary),
                      accuracy_metric=accuracy_metric, accuracy_value=_float(accuracy_value),
                      accuracy_target=_float(accuracy_target),
                      accuracy_passed=None if accuracy_passed is None else bool(accuracy_passed))
        self._update(run_id, values)

    def finish_run(self, run_id: int, *, status: str, error: str | None = None, **result: Any) -> None:
        """Record how a run ended (status, error, and optionally its result fields) and when."""
        _check(status, RUN_STATUSES[1:], "finished status")
        if result:
            self.record_result(run_id, **result)
        self._update(run_id, dict(status=status, error=error, finished_at=_now()))

    def _update(self, run_id: int, values: dict[str, Any]) -> None:
        with self.transaction() as conn:
            if conn.execute(update(runs).where(runs.c.id == run_id).values(**values)).rowcount != 1:
                raise self._not_found(run_id)

    def mark_aborted(self, run_id: int, reason: str) -> None:
        """Mark a still-running run aborted with a reason (on Ctrl-C); finished runs stay as they are."""
        with self.transaction() as conn:
            self._require_run(conn, run_id)
            _recovery.mark_run_aborted(conn, run_id, reason, _now())

    def recover_aborted(self) -> list[int]:
        """Crash recovery: mark aborted the 'running' runs and peak searches of this host whose process is
        gone; return the runs' ids. Opening a writable store does this; a sweep does it after each cell."""
        with self.transaction(write=False) as conn:
            runs_gone, searches_gone = (_recovery.dead_runs(conn, self.hostname),
                                        _recovery.dead_searches(conn, self.hostname))
        for run_id, pid in runs_gone:
            with self.transaction() as conn:
                _recovery.mark_run_aborted(conn, run_id, f"process {pid} on {self.hostname} ended before the "
                                                         f"run finished", _now())
        for search_id in searches_gone:
            with self.transaction() as conn:
                _recovery.mark_search_aborted(conn, search_id, _now())
        return [run_id for run_id, _ in runs_gone]

    def get_run(self, run_id: int | str) -> RunRecord:
        """One run, by integer id, full uuid or a unique uuid prefix of 4+ characters."""
        with self.transaction(write=False) as conn:
            row = _lookup.find_run(conn, run_id, display_url(self.url))
        if row is None:
            raise self._not_found(run_id)
        return checked_run(row, display_url(self.url))

    def list_runs(self, *, task: str | None = None, backend: str | None = None,
                  scenario: str | None = None, status: str | None = None, source: str | None = None,
                  limit: int | None = 50, provenance: bool = False) -> list[RunRecord]:
        """Runs matching every filter given, newest first as RunRecords. A damaged row is left out
        and named in a DamagedRowWarning (its id and what is wrong); the others are listed.

        `source` 'measured' keeps runs measured here; 'mlperf' keeps runs imported from MLPerf
        results and adds their provenance (round, submitter, system, ...) under 'imported'.
        `provenance`: every imported run carries its provenance under 'imported', whatever the source.
        """
        _check(source, (None, *_imported.SOURCES), "source")
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(limit)
        for column, value in ((runs.c.task_name, task), (runs.c.backend_name, backend),
                              (runs.c.scenario, scenario), (runs.c.status, status)):
            if value is not None:
                query = query.where(column == value)
        if source is not None:
            query = _imported.list_query(query, source)
        elif provenance:
            query = _imported.with_provenance(query)
        with self.transaction(write=False) as conn:
            rows = (_imported.nest(row) for row in conn.execute(query).mappings())
            return readable_runs(rows, display_url(self.url))

    # -- runs imported from outside -------------------------------------------------------------

    def put_imported_run(self, *, cards: Mapping[str, tuple[Mapping[str, Any], str, str]],
                         run: Mapping[str, Any], imported: Mapping[str, Any]) -> tuple[int, bool]:
        """Store an imported run with its cards ({kind: (card, hash, name)}) and provenance, in one
        transaction; return (run id, True), or (the existing run's id, False) if its (round,
        source_path) was imported before."""
        _check(run.get("provenance"), ("imported",), "provenance of an imported run")
        try:
            return self._insert_imported(cards, run, imported)
        except StoreError:
            # another importer stored it between our lookup and insert (PostgreSQL has no BEGIN
            # IMMEDIATE): the unique (round, source_path) refused ours; theirs is the one
            found = self.find_imported(imported["round"], imported["source_path"])
            if found is None:
                raise
            return found["run_id"], False

    def _insert_imported(self, cards: Mapping[str, tuple[Mapping[str, Any], str, str]], run: Mapping[str, Any],
                         imported: Mapping[str, Any]) -> tuple[int, bool]:
        with self.transaction() as conn:
            found = _imported.find(conn, imported["round"], imported["source_path"])
            if found is not None:
                return found["run_id"], False
            for kind, (card, digest, name) in cards.items():
                insert_if_absent(conn, self._card_table(kind), dict(hash=digest, name=name, card=dict(card),
                                                                     created_at=_now()))
            hashes = {f"{kind}_hash": cards[kind][1] for kind in CARD_TABLES}
            return _imported.insert(conn, {**run, **hashes}, imported, _now()), True

    def find_imported(self, round_name: str, source_path: str) -> dict[str, Any] | None:
        """The provenance row of a published result already imported (None if it was not)."""
        with self.transaction(write=False) as conn:
            return _imported.find(conn, round_name, source_path)

    def get_imported(self, run_id: int) -> dict[str, Any] | None:
        """Where an imported run came from (round, submitter, system, ...); None for a measured run."""
        with self.transaction(write=False) as conn:
            return _imported.by_run(conn, run_id)

    # -- run bundles: runs measured on another machine, bundles received, sync cursors (_bundled) --

    def put_bundle(self, sha256: str, rows: Sequence[BundledRunRows], *, hostname: str, submitted_by: str | None,
                   size_bytes: int) -> Received:
        """Store the runs of a checked bundle that are not stored yet, whole, with its submissions row, in one
        transaction (a crash leaves nothing); a bundle received before (same sha256) stores nothing."""
        for row in rows:
            _check(row.values.get("status"), RUN_STATUSES[1:], "status of a bundled run")
            _check(row.values.get("provenance"), PROVENANCES, "provenance")
        submission = dict(hostname=hostname, submitted_by=submitted_by, size_bytes=size_bytes)
        with self.transaction() as conn:
            return _bundled.store_bundle(conn, sha256, rows, submission, _now())

    def bundle_received(self, sha256: str) -> Received | None:
        """The bundle of this sha256 as received before (what it stored), or None."""
        with self.transaction(write=False) as conn:
            return _bundled.received(conn, sha256)

    def bundle_runs_after(self, after: int, limit: int) -> tuple[list[str], int, bool]:
        """A sync page: uuids of finished measured runs with ids above `after`, the id to go on after, more?"""
        with self.transaction(write=False) as conn:
            return _bundled.runs_after(conn, after, limit)

    def sync_cursor(self, server: str) -> SyncCursor:
        """Where `infersight sync` stands with `server` (a fresh cursor if it never synced)."""
        with self.transaction(write=False) as conn:
            return _bundled.get_cursor(conn, server)

    def set_sync_cursor(self, server: str, cursor: SyncCursor) -> None:
        """Record how far sync has pulled from and pushed to `server`."""
        with self.transaction() as conn:
            _bundled.set_cursor(conn, server, cursor, _now())

    def _require_run(self, conn: Connection, run_id: int) -> None:
        """Raise RunNotFound unless a run with this id exists."""
        if not id_in_range(run_id) or conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is None:
            raise self._not_found(run_id)

    def _not_found(self, run_id: int | str) -> RunNotFound:
        """The error for a run id or uuid that names no run."""
        return RunNotFound(f"no run {run_id!r} in {display_url(self.url)} "
                           f"(give an id, a uuid or a uuid prefix of 4+ characters)")

    # -- per-query performance samples ----------------------------------------------------------

    def append_perf_samples(self, run_id: int, columns: Mapping[str, np.ndarray]) -> None:
        """Append per-query records (equal-length int64 arrays) as new chunks, in one transaction.

        The columns are PERF_COLUMNS plus any of OPTIONAL_PERF_COLUMNS (stream_id, first_token_ns,
        output_tokens); a run should give the same optional columns in every append.
        """
        arrays = perf_arrays(columns)
        with self.transaction() as conn:
            self._require_run(conn, run_id)
            write_chunks(conn, run_id, arrays, CHUNK_ROWS)

    def read_perf_samples(self, run_id: int) -> dict[str, np.ndarray]:
        """Every per-query record of a run, chunks concatenated in order (empty arrays if none).

        Optional columns (OPTIONAL_PERF_COLUMNS) are included when every chunk of the run has them.
        """
        with self.transaction(write=False) as conn:
            self._require_run(conn, run_id)
            return read_chunks(conn, run_id, display_url(self.url))

    def perf_dataframe(self, run_id: int) -> pandas.DataFrame:
        """The per-query records of a run as a pandas DataFrame, one row per query."""
        import pandas

        return pandas.DataFrame(self.read_perf_samples(run_id))

    # -- accuracy samples -----------------------------------------------------------------------

    def put_accuracy_samples(self, run_id: int, sample_index: Sequence[int], predictions: Sequence,
                             references: Sequence, correct: Sequence[bool] | None = None) -> None:
        """Store one accuracy record per sample (prediction, reference as JSON), in one transaction."""
        n = len(sample_index)
        if correct is None:
            correct = [None] * n
        if not len(predictions) == len(references) == len(correct) == n:
            raise ValueError(f"accuracy samples need equal lengths, got {n} indices, "
                             f"{len(predictions)} predictions, {len(references)} references, "
                             f"{len(correct)} correct flags")
        rows = [{"run_id": run_id, "sample_index": int(i), "prediction": p, "reference": r,
                 "correct": None if c is None else bool(c)}
                for i, p, r, c in zip(sample_index, predictions, references, correct)]
        with self.transaction() as conn:
            self._require_run(conn, run_id)
            if rows:
                conn.execute(accuracy_samples.insert(), rows)

    def read_accuracy_samples(self, run_id: int) -> list[dict[str, Any]]:
        """Accuracy records of a run in sample order: sample_index, prediction, reference, correct."""
        columns = [c for c in accuracy_samples.c if c.name != "run_id"]
        query = (select(*columns).where(accuracy_samples.c.run_id == run_id)
                 .order_by(accuracy_samples.c.sample_index))
        with self.transaction(write=False) as conn:
            self._require_run(conn, run_id)
            return [dict(row) for row in conn.execute(query).mappings()]


def _float(value: float | None) -> float | None:
    """A plain float (numpy scalars included) or None."""
    return None if value is None else float(value)
