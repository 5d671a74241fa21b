"""Finding one run by what a user types: an integer id, a full uuid or a unique uuid prefix (used by Store)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Connection, RowMapping, select

from runner.errors import RunNotFound
from runner.store._checks import id_in_range
from runner.store.schema import runs

__all__ = ["find_run"]

_UUID_CHARS = frozenset("0123456789abcdef-")


def find_run(conn: Connection, run_id: int | str, where: str) -> RowMapping | None:
    """The runs row an id, uuid or unique uuid prefix (4+ characters) names, or None; RunNotFound naming
    `where` when a prefix is ambiguous."""
    if isinstance(run_id, (int, np.integer)) and not isinstance(run_id, bool):
        if not id_in_range(run_id):
            return None
        return conn.execute(select(runs).where(runs.c.id == int(run_id))).mappings().first()
    ref = str(run_id).strip()
    key = ref.lower()
    if len(key) >= 4 and set(key) <= _UUID_CHARS:
        query = select(runs).where(runs.c.uuid.startswith(key)).order_by(runs.c.id).limit(6)
        found = conn.execute(query).mappings().all()
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            uuids = ", ".join(r["uuid"] for r in found[:5])
            raise RunNotFound(f"run prefix {ref!r} is ambiguous in {where}: "
                              f"it matches {uuids}{', ...' if len(found) > 5 else ''}")
    if key.isdigit() and id_in_range(int(key)):
        return conn.execute(select(runs).where(runs.c.id == int(key))).mappings().first()
    return None
