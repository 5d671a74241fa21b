"""Peak-QPS searches in the store: the search row (request, status, result) and its linked probe runs.

Each probe of a search is an ordinary run whose `runs.search_id` points at the search. Every
write is its own transaction (`Store.transaction`), so a search killed between two probes leaves a
readable log (its row stays 'running' until `Store.recover_aborted`, which opening a store on this
host runs, marks it aborted, as for runs).
Methods block on the database and are meant for the thread that runs the search.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update

from runner.store.records import PeakSearchRecord
from runner.store.schema import peak_searches, runs
from runner.store.store import Store

__all__ = ["SearchLog", "SEARCH_STATUSES"]

SEARCH_STATUSES = ("running", "complete", "failed", "aborted")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SearchLog:
    """Reads and writes the peak_searches table of a Store and the search_id links of its runs."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, *, task_name: str, backend_name: str, scenario: str, request: Mapping[str, Any]) -> int:
        """Record a new search with status 'running' (this process's pid joins its request); return its id."""
        values = dict(task_name=task_name, backend_name=backend_name, scenario=scenario,
                      request={**request, "pid": os.getpid()},
                      status="running", hostname=self.store.hostname, started_at=_now())
        with self.store.transaction() as conn:
            return conn.execute(peak_searches.insert().values(**values)).inserted_primary_key[0]

    def update_result(self, search_id: int, result: Mapping[str, Any]) -> None:
        """Replace the search's result so far (probes, P(VALID) table, bracket); its status stays."""
        self._update(search_id, dict(result=dict(result)))

    def finish(self, search_id: int, status: str, result: Mapping[str, Any] | None = None) -> None:
        """Record how the search ended (complete, failed or aborted), with its final result if given."""
        if status not in SEARCH_STATUSES[1:]:
            raise ValueError(f"search status must be one of {SEARCH_STATUSES[1:]}, not {status!r}")
        values: dict[str, Any] = dict(status=status, finished_at=_now())
        if result is not None:
            values["result"] = dict(result)
        self._update(search_id, values)

    def _update(self, search_id: int, values: dict[str, Any]) -> None:
        with self.store.transaction() as conn:
            if conn.execute(update(peak_searches).where(peak_searches.c.id == search_id).values(**values)).rowcount != 1:
                raise KeyError(f"no peak search {search_id}")

    def link_run(self, run_id: int, search_id: int) -> None:
        """Mark a run as a probe of a search (runs.search_id)."""
        with self.store.transaction() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(search_id=search_id))

    def get(self, search_id: int) -> PeakSearchRecord:
        """A search with its probe runs (id, status, validity, headline, target QPS), oldest first."""
        with self.store.transaction(write=False) as conn:
            row = conn.execute(select(peak_searches).where(peak_searches.c.id == search_id)).mappings().first()
            if row is None:
                raise KeyError(f"no peak search {search_id}")
            query = (select(runs.c.id, runs.c.status, runs.c.validity, runs.c.headline_value, runs.c.settings)
                     .where(runs.c.search_id == search_id).order_by(runs.c.id))
            probes = [_probe_row(r) for r in conn.execute(query).mappings()]
        return PeakSearchRecord.model_validate({**dict(row), "runs": probes})

    def list(self, *, task: str | None = None, limit: int | None = 50) -> list[PeakSearchRecord]:
        """Searches, newest first (optionally of one task), without their probe runs (`get` lists them)."""
        query = select(peak_searches).order_by(peak_searches.c.id.desc()).limit(limit)
        if task is not None:
            query = query.where(peak_searches.c.task_name == task)
        with self.store.transaction(write=False) as conn:
            return [PeakSearchRecord.model_validate(dict(r)) for r in conn.execute(query).mappings()]

    def search_of_run(self, run_id: int) -> PeakSearchRecord | None:
        """The search a run is a probe of (without its probe runs), or None."""
        query = (select(peak_searches).join(runs, runs.c.search_id == peak_searches.c.id)
                 .where(runs.c.id == run_id))
        with self.store.transaction(write=False) as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else PeakSearchRecord.model_validate(dict(row))


def _probe_row(row: Mapping[str, Any]) -> dict[str, Any]:
    settings = (row["settings"] or {}).get("scenario") or {}
    return {"run_id": row["id"], "status": row["status"], "validity": row["validity"],
            "headline_value": row["headline_value"], "target_qps": settings.get("target_qps")}
