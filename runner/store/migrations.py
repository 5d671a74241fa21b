"""Ordered schema migrations, recorded in the schema_version table (sqlite-utils' Migrations pattern).

`MIGRATIONS` is a list of (version, function) pairs applied in order; each function takes
an open Connection and runs inside the same transaction that records its version, so a
failed migration leaves nothing behind. Version 1 creates every table from schema.py.

Because version 1 builds the tables as schema.py defines them *now*, a fresh store already
has every later column: later migrations must be idempotent (use `add_column`, which skips
a column that exists). To add a migration: change schema.py, append
`(N, _vN_what_it_does)` here, and note version N in schema.py's history comment.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import Column, Connection, Engine, func, inspect, select, text
from sqlalchemy.schema import CreateColumn

from runner.errors import StoreError
from runner.store._perf import recode_chunks
from runner.store.schema import (ACCOUNT_TABLES, OPTIONAL_PERF_COLUMNS, RUNS_SYSTEM_INDEX, SWEEP_TABLES,
                                 imported_runs, jobs, metadata, peak_searches, perf_samples, schema_version,
                                 submissions, sync_state)

__all__ = ["MIGRATIONS", "LATEST_VERSION", "apply_migrations", "current_version", "add_column", "check_not_newer"]

_PG_LOCK_KEY = 0x1F5E_5107  # advisory lock serialising concurrent migrators on PostgreSQL


def _v1_create_tables(conn: Connection) -> None:
    """Create every table and index of schema.py (skipping any that exist)."""
    metadata.create_all(conn, checkfirst=True)


def _v2_imported_runs(conn: Connection) -> None:
    """Add the imported_runs table and its index (a no-op where version 1 already made them)."""
    metadata.create_all(conn, tables=[imported_runs], checkfirst=True)


def _v3_sweeps(conn: Connection) -> None:
    """Add the sweeps, sweep_cells and sweep_runs tables (a no-op where version 1 already made them)."""
    metadata.create_all(conn, tables=list(SWEEP_TABLES), checkfirst=True)


def _v4_streams_and_searches(conn: Connection) -> None:
    """Add the optional per-query columns of perf_samples and the peak_searches table."""
    for name in OPTIONAL_PERF_COLUMNS:
        add_column(conn, perf_samples.name, perf_samples.c[name])
    metadata.create_all(conn, tables=[peak_searches], checkfirst=True)


def _v5_compress_perf_samples(conn: Connection) -> None:
    """Rewrite the raw int64 chunks of perf_samples compressed (runner/store/_perf.py; in version 6's form)."""
    recode_chunks(conn, raw=True)


def _v6_perf_planes(conn: Connection) -> None:
    """Rewrite version 5's compressed chunks in version 6's form: differences from a reference column, byte
    planes cut to those used (runner/store/_perf.py)."""
    recode_chunks(conn, raw=False)


def _v7_accounts(conn: Connection) -> None:
    """Add the users and api_tokens tables of the team server and the index of runs by system (a no-op where
    version 1 already made them)."""
    metadata.create_all(conn, tables=list(ACCOUNT_TABLES), checkfirst=True)
    RUNS_SYSTEM_INDEX.create(conn, checkfirst=True)


def _v8_jobs(conn: Connection) -> None:
    """Add the jobs table (runner/jobs; a no-op where version 1 already made it)."""
    metadata.create_all(conn, tables=[jobs], checkfirst=True)


def _v9_submissions(conn: Connection) -> None:
    """Add the submissions and sync_state tables (run bundles received; where each sync stands)."""
    metadata.create_all(conn, tables=[submissions, sync_state], checkfirst=True)


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _v1_create_tables),
    (2, _v2_imported_runs),
    (3, _v3_sweeps),
    (4, _v4_streams_and_searches),
    (5, _v5_compress_perf_samples),
    (6, _v6_perf_planes),
    (7, _v7_accounts),
    (8, _v8_jobs),
    (9, _v9_submissions),
]
LATEST_VERSION = MIGRATIONS[-1][0]


def add_column(conn: Connection, table_name: str, column: Column) -> None:
    """ALTER TABLE ... ADD COLUMN, unless the table already has it (for later migrations)."""
    existing = {c["name"] for c in inspect(conn).get_columns(table_name)}
    if column.name in existing:
        return
    ddl = CreateColumn(column).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {table_name} ADD COLUMN {ddl}")


def current_version(conn: Connection) -> int:
    """Highest applied migration version; 0 for an empty database."""
    if not inspect(conn).has_table(schema_version.name):
        return 0
    return conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one()


def apply_migrations(engine: Engine, url: str) -> list[int]:
    """Apply every pending migration in order, one transaction each; return the versions applied."""
    applied = []
    for version, migrate in MIGRATIONS:
        with engine.execution_options(infersight_write=True).begin() as conn:
            _lock(conn)
            current = current_version(conn)
            check_not_newer(current, url)
            if version <= current:
                continue
            migrate(conn)
            conn.execute(schema_version.insert().values(version=version,
                                                        applied_at=datetime.now(timezone.utc)))
            applied.append(version)
    return applied


def check_not_newer(current: int, url: str) -> None:
    """StoreError if the store's schema is newer than this infersight understands."""
    if current > LATEST_VERSION:
        raise StoreError(f"{url}: store has schema version {current}, newer than this "
                         f"infersight understands ({LATEST_VERSION}); upgrade infersight")


def _lock(conn: Connection) -> None:
    """Serialise migrators: SQLite's BEGIN IMMEDIATE already does; PostgreSQL takes an advisory lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
