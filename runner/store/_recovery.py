"""Crash recovery: runs and peak searches left 'running' by a process of this host that is gone (used by Store).

A process killed outright (SIGKILL, power loss) cannot record how its run or search ended; the next Store
opened on the same host, or `Store.recover_aborted`, marks them aborted with the reason.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from runner.store._checks import process_alive
from runner.store.schema import peak_searches, runs

__all__ = ["dead_runs", "dead_searches", "mark_run_aborted", "mark_search_aborted"]


def dead_runs(conn: Connection, hostname: str) -> list[tuple[int, int | None]]:
    """(id, pid) of the 'running' runs of this host whose process is gone."""
    rows = conn.execute(select(runs.c.id, runs.c.pid, runs.c.started_at).where(
        runs.c.status == "running", runs.c.hostname == hostname)).all()
    return [(row.id, row.pid) for row in rows if not process_alive(row.pid, row.started_at)]


def dead_searches(conn: Connection, hostname: str) -> list[int]:
    """Ids of the 'running' peak searches of this host whose process (the `pid` in the request) is gone."""
    rows = conn.execute(select(peak_searches.c.id, peak_searches.c.request, peak_searches.c.started_at)
                        .where(peak_searches.c.status == "running", peak_searches.c.hostname == hostname)).all()
    return [r.id for r in rows if not process_alive((r.request or {}).get("pid"), r.started_at)]


def mark_run_aborted(conn: Connection, run_id: int, reason: str, now: datetime) -> None:
    """Mark a run aborted with a reason, unless it finished meanwhile."""
    conn.execute(update(runs).where(runs.c.id == run_id, runs.c.status == "running")
                 .values(status="aborted", error=reason, finished_at=now))


def mark_search_aborted(conn: Connection, search_id: int, now: datetime) -> None:
    """Mark a peak search aborted, unless it finished meanwhile."""
    conn.execute(update(peak_searches).where(peak_searches.c.id == search_id, peak_searches.c.status == "running")
                 .values(status="aborted", finished_at=now))
