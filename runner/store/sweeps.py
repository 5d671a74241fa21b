"""Sweeps in the store: the sweep, its cells with their status and reason, and every run it started.

A sweep is found again by its name, so running the same file after an interruption resumes it.
Every write is its own transaction (a sweep killed between two cells leaves a readable log).
Methods block on the database; a sweep's process and its cells' processes use them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select, update

from runner.errors import SettingsError
from runner.store.records import SweepRecord
from runner.store.schema import runs, sweep_cells, sweep_runs, sweeps
from runner.store._checks import process_alive
from runner.store.store import Store

__all__ = ["SweepLog", "SWEEP_STATUSES", "CELL_STATUSES"]

SWEEP_STATUSES = ("running", "complete", "partial", "failed", "aborted")  # partial: some cells skipped
CELL_STATUSES = ("pending", "running", "complete", "failed", "skipped")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SweepLog:
    """Reads and writes the sweep tables of a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, *, name: str, file_path: str, file_hash: str, spec: Mapping[str, Any], cell_count: int,
             new: bool = False) -> tuple[int, bool]:
        """The sweep of this name to resume (its latest), or a new one; returns (sweep id, resumed)."""
        values = dict(file_path=file_path, file_hash=file_hash, spec=dict(spec), status="running",
                      cell_count=cell_count, hostname=self.store.hostname, pid=_pid(), finished_at=None)
        with self.store.transaction() as conn:
            latest = None if new else conn.execute(select(sweeps).where(sweeps.c.name == name)
                                                   .order_by(sweeps.c.id.desc()).limit(1)).mappings().first()
            if latest is not None:
                self._refuse_if_running(latest)
                conn.execute(update(sweeps).where(sweeps.c.id == latest["id"]).values(**values))
                return latest["id"], True
            row = conn.execute(sweeps.insert().values(name=name, started_at=_now(), **values))
            return row.inserted_primary_key[0], False

    def _refuse_if_running(self, sweep: Mapping[str, Any]) -> None:
        alive = sweep["status"] == "running" and sweep["hostname"] == self.store.hostname and \
            sweep["pid"] != _pid() and process_alive(sweep["pid"], sweep["started_at"])
        if alive:
            raise SettingsError(f"sweep {sweep['name']!r} is being run by process {sweep['pid']} on "
                                f"{sweep['hostname']}; wait for it, or start a separate sweep with --new")

    def add_cells(self, sweep_id: int, cells: Iterable[tuple[str, int, Mapping[str, Any]]]) -> None:
        """Record cells (key, position, request) not yet in the sweep as pending; known cells keep their state."""
        with self.store.transaction() as conn:
            query = select(sweep_cells.c.cell_key).where(sweep_cells.c.sweep_id == sweep_id)
            known = set(conn.execute(query).scalars())
            rows = [dict(sweep_id=sweep_id, cell_key=key, position=pos, request=dict(req), status="pending",
                         attempts=0) for key, pos, req in cells if key not in known]
            if rows:
                conn.execute(sweep_cells.insert(), rows)

    def start_cell(self, sweep_id: int, key: str) -> int:
        """Mark a cell running and count the attempt; returns the attempt number (1, 2, ...)."""
        with self.store.transaction() as conn:
            where = (sweep_cells.c.sweep_id == sweep_id) & (sweep_cells.c.cell_key == key)
            attempts = conn.execute(select(sweep_cells.c.attempts).where(where)).scalar_one() + 1
            conn.execute(update(sweep_cells).where(where).values(status="running", attempts=attempts, reason=None,
                                                                 started_at=_now(), finished_at=None))
        return attempts

    def finish_cell(self, sweep_id: int, key: str, status: str, reason: str | None = None,
                    run_id: int | None = None) -> None:
        """Record how a cell ended: its status, why (failed or skipped) and the run that counts."""
        if status not in CELL_STATUSES[2:]:
            raise ValueError(f"cell status must be one of {CELL_STATUSES[2:]}, not {status!r}")
        with self.store.transaction() as conn:
            conn.execute(update(sweep_cells).where(sweep_cells.c.sweep_id == sweep_id, sweep_cells.c.cell_key == key)
                         .values(status=status, reason=reason, run_id=run_id, finished_at=_now()))

    def interrupt_cell(self, sweep_id: int, key: str, reason: str) -> None:
        """Mark a cell that was running when the sweep was interrupted failed, with the reason."""
        with self.store.transaction() as conn:
            conn.execute(update(sweep_cells).where(sweep_cells.c.sweep_id == sweep_id, sweep_cells.c.cell_key == key,
                                                   sweep_cells.c.status == "running")
                         .values(status="failed", reason=reason, finished_at=_now()))

    def finish(self, sweep_id: int, status: str) -> None:
        """Record how the sweep ended."""
        if status not in SWEEP_STATUSES[1:]:
            raise ValueError(f"sweep status must be one of {SWEEP_STATUSES[1:]}, not {status!r}")
        with self.store.transaction() as conn:
            conn.execute(update(sweeps).where(sweeps.c.id == sweep_id).values(status=status, finished_at=_now()))

    def link_run(self, run_id: int, sweep_id: int, key: str, attempt: int) -> None:
        """Link a run to the sweep cell that started it (called by the cell's process as the run is created)."""
        with self.store.transaction() as conn:
            conn.execute(sweep_runs.insert().values(run_id=run_id, sweep_id=sweep_id, cell_key=key, attempt=attempt))

    def attempt_run(self, sweep_id: int, key: str, attempt: int) -> dict[str, Any] | None:
        """The run an attempt at a cell created (id, status, error), or None if it created none."""
        query = (select(runs.c.id, runs.c.status, runs.c.error).join(sweep_runs, sweep_runs.c.run_id == runs.c.id)
                 .where(sweep_runs.c.sweep_id == sweep_id, sweep_runs.c.cell_key == key,
                        sweep_runs.c.attempt == attempt)
                 .order_by(runs.c.id.desc()).limit(1))
        with self.store.transaction(write=False) as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    def complete_run(self, sweep_id: int, key: str) -> int | None:
        """The id of a complete run linked to this cell of this sweep, if there is one."""
        query = (select(func.max(runs.c.id)).join(sweep_runs, sweep_runs.c.run_id == runs.c.id)
                 .where(sweep_runs.c.sweep_id == sweep_id, sweep_runs.c.cell_key == key, runs.c.status == "complete"))
        with self.store.transaction(write=False) as conn:
            return conn.execute(query).scalar()

    def get(self, sweep_id: int) -> SweepRecord:
        """A sweep and its cells (in position order), each with its run's headline."""
        with self.store.transaction(write=False) as conn:
            sweep = conn.execute(select(sweeps).where(sweeps.c.id == sweep_id)).mappings().first()
            if sweep is None:
                raise KeyError(f"no sweep {sweep_id}")
            query = (select(sweep_cells, runs.c.validity, runs.c.headline_metric, runs.c.headline_value,
                            runs.c.headline_units)
                     .outerjoin(runs, runs.c.id == sweep_cells.c.run_id)
                     .where(sweep_cells.c.sweep_id == sweep_id).order_by(sweep_cells.c.position))
            cells = [dict(row) for row in conn.execute(query).mappings()]
        return SweepRecord.model_validate({**dict(sweep), "cells": cells})

    def sweep_of_run(self, run_id: int) -> dict[str, Any] | None:
        """Which sweep, cell and attempt started a run (None for a run outside any sweep)."""
        query = (select(sweep_runs, sweeps.c.name).join(sweeps, sweeps.c.id == sweep_runs.c.sweep_id)
                 .where(sweep_runs.c.run_id == run_id))
        with self.store.transaction(write=False) as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)


def _pid() -> int:
    return os.getpid()
