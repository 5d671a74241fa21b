"""Queries on imported_runs, the provenance of runs imported from outside (used by Store)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from runner.store.schema import imported_runs, runs

__all__ = ["SOURCES", "IMPORTED_FIELDS", "find", "by_run", "insert", "list_query", "with_provenance", "nest",
           "insert_if_absent"]

SOURCES = ("mlperf", "measured")
IMPORTED_FIELDS = tuple(c.name for c in imported_runs.c if c.name not in ("run_id", "imported_at"))
_PREFIX = "imported__"


def find(conn: Connection, round_name: str, source_path: str) -> dict[str, Any] | None:
    """The imported_runs row of a published result, or None if it was never imported."""
    row = conn.execute(select(imported_runs).where(imported_runs.c.round == round_name,
                                                   imported_runs.c.source_path == source_path)).mappings().first()
    return None if row is None else dict(row)


def by_run(conn: Connection, run_id: int) -> dict[str, Any] | None:
    """The imported_runs row of a run, or None for a run measured here."""
    row = conn.execute(select(imported_runs).where(imported_runs.c.run_id == run_id)).mappings().first()
    return None if row is None else dict(row)


def insert(conn: Connection, run: Mapping[str, Any], imported: Mapping[str, Any], now: datetime) -> int:
    """Insert the runs row and its imported_runs row; return the run id."""
    missing = sorted(set(IMPORTED_FIELDS) - set(imported) - {"power", "accuracy_text", "accelerators_per_node"})
    if missing:
        raise ValueError(f"imported run needs {', '.join(missing)}")
    run_id = conn.execute(runs.insert().values(**run)).inserted_primary_key[0]
    conn.execute(imported_runs.insert().values(run_id=run_id, imported_at=now, **imported))
    return run_id


def list_query(query: Select, source: str) -> Select:
    """Restrict a select over runs to one source; for 'mlperf' add the imported columns (prefixed)."""
    if source == "measured":
        return query.where(runs.c.provenance == "measured")
    return with_provenance(query).where(imported_runs.c.source == source)


def with_provenance(query: Select) -> Select:
    """Add the imported columns (prefixed; NULL for runs measured here) to a select over runs."""
    extra = [c.label(_PREFIX + c.name) for c in imported_runs.c if c.name != "run_id"]
    return query.add_columns(*extra).outerjoin(imported_runs, imported_runs.c.run_id == runs.c.id)


def nest(row: Mapping[str, Any]) -> dict[str, Any]:
    """A run row with its prefixed imported columns gathered under 'imported'."""
    out: dict[str, Any] = {}
    imported: dict[str, Any] = {}
    for key, value in row.items():
        if key.startswith(_PREFIX):
            imported[key[len(_PREFIX):]] = value
        else:
            out[key] = value
    if any(value is not None for value in imported.values()):
        out["imported"] = imported
    return out


def insert_if_absent(conn: Connection, table: Table, values: dict[str, Any]) -> None:
    """Insert a row unless its primary key exists (ON CONFLICT DO NOTHING where the dialect has it)."""
    dialect_insert = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}.get(conn.dialect.name)
    if dialect_insert is not None:
        conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing())
        return
    key = [column == values[column.name] for column in table.primary_key.columns]
    if conn.execute(select(*table.primary_key.columns).where(*key)).first() is None:
        conn.execute(table.insert().values(**values))
