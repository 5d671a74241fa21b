"""Checks on what the store reads back: a damaged row is named, never passed on as if valid."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NoReturn

import psutil
from pydantic import ValidationError

from runner.errors import DamagedRowWarning, StoreError
from runner.store.records import RunRecord
from runner.store.schema import Damaged

__all__ = ["RUN_STATUSES", "VALIDITIES", "PROVENANCES", "ID_MAX", "id_in_range", "checked_run",
           "readable_runs", "checked_card", "process_alive"]

RUN_STATUSES = ("running", "complete", "failed", "aborted")
VALIDITIES = (None, "VALID", "INVALID", "LOADGEN_LIMIT")  # LOADGEN_LIMIT: runner.loadgen.lateness
PROVENANCES = ("measured", "imported")
ID_MAX = 2**63 - 1  # the largest id a 64-bit INTEGER column holds


def id_in_range(value: Any) -> bool:
    """Whether an integer can be a row id (0 .. 2**63 - 1); bigger ones name no row."""
    return 0 <= int(value) <= ID_MAX


def checked_run(row: Mapping[str, Any], where: str) -> RunRecord:
    """A runs row as a RunRecord, or a StoreError naming the run and the damaged column."""
    out = dict(row)
    for column, allowed in (("status", RUN_STATUSES), ("validity", VALIDITIES), ("provenance", PROVENANCES)):
        if column in out and out[column] not in allowed:
            _damaged(where, out, column, f"{out[column]!r} is not one of {', '.join(map(str, allowed))}")
    for column, value in out.items():
        if isinstance(value, Damaged):
            _damaged(where, out, column, f"holds text that is not JSON ({value.text[:40]!r})")
    try:
        return RunRecord.from_row(out)
    except ValidationError as exc:
        first = exc.errors()[0]
        _damaged(where, out, ".".join(map(str, first["loc"])), f"{first['msg']} ({first['input']!r:.40})")
        raise  # unreachable: _damaged raises


def readable_runs(rows: Iterable[Mapping[str, Any]], where: str) -> list[RunRecord]:
    """The runs rows that read back whole (checked_run); each damaged one is left out, named in a
    DamagedRowWarning with what is wrong, so one bad row does not hide the others."""
    out = []
    for row in rows:
        try:
            out.append(checked_run(row, where))
        except StoreError as exc:
            warnings.warn(f"{exc} (left out of the list)", DamagedRowWarning, stacklevel=3)
    return out


def checked_card(card: Any, kind: str, card_hash: str, where: str) -> dict[str, Any]:
    """A stored card dict, or a StoreError naming the card if its JSON is damaged."""
    if not isinstance(card, dict):
        problem = "text that is not JSON" if isinstance(card, Damaged) else f"a {type(card).__name__}"
        raise StoreError(f"{where}: {kind} card {card_hash} is damaged: its row holds {problem}, not a card")
    return card


def _damaged(where: str, row: Mapping[str, Any], column: str, problem: str) -> NoReturn:
    raise StoreError(f"{where}: run {row.get('id')} is damaged: runs.{column} {problem}")


def process_alive(pid: int | None, started_at: datetime) -> bool:
    """Whether pid is a live (non-zombie) process that began before the run did (not a reused pid)."""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return proc.create_time() <= started_at.timestamp() + 1.0
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True
