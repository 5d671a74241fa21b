"""Run queries for the team server: filters, a sort, and keyset (cursor) pagination over the runs table.

`RunQuery` is the validated request (its fields are the REST API's query parameters); `query_runs` runs
it and returns one page of compact run rows (no summary or settings) and the cursor of the next page.
A cursor is opaque to clients: the sort, order, and the last row's sort value and id, base64url JSON.
Sorting keeps NULLs last in both orders; ties are broken by run id, so pages never skip or repeat a run.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import Select, and_, or_, select

from runner.store.schema import UTCDateTime, imported_runs, runs, systems
from runner.store.store import Store

__all__ = ["RunQuery", "RunPage", "query_runs", "SORT_KEYS", "LIST_COLUMNS"]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SORT_KEYS = ("started_at", "finished_at", "id", "headline_value", "task_name", "backend_name", "scenario")
LIST_COLUMNS = ("id", "uuid", "task_name", "task_version", "model_variant", "backend_name", "scenario", "status",
                "validity", "headline_metric", "headline_value", "headline_units", "accuracy_metric",
                "accuracy_value", "accuracy_passed", "quick", "compliant", "provenance", "source", "hostname",
                "started_at", "finished_at", "label", "system_hash")


class RunQuery(BaseModel):
    """Which runs to list, in what order, and which page."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    task: str | None = Field(None, max_length=255, description="Only runs of this task (its name).",
                             examples=["digits"])
    scenario: str | None = Field(None, max_length=64, description="Only runs under this scenario.",
                                 examples=["offline"])
    system: str | None = Field(None, max_length=255, description="Only runs on this system (its system card's name).")
    backend: str | None = Field(None, max_length=255, description="Only runs on this backend.",
                                examples=["onnxruntime"])
    status: Literal["running", "complete", "failed", "aborted"] | None = Field(
        None, description="Only runs with this status.")
    source: Literal["measured", "mlperf"] | None = Field(
        None, description="measured: runs measured with infersight; mlperf: results imported from MLPerf rounds.")
    started_after: datetime | None = Field(None, description="Only runs started at or after this time (ISO 8601; "
                                                             "without a zone: UTC).")
    started_before: datetime | None = Field(None, description="Only runs started before this time (ISO 8601; "
                                                              "without a zone: UTC).")
    sort: Literal[SORT_KEYS] = Field("started_at", description="The column to sort by (NULLs last).")
    order: Literal["asc", "desc"] = Field("desc", description="Sort order.")
    limit: int = Field(100, ge=1, le=1000, description="Most runs in a page.")
    cursor: str | None = Field(None, max_length=512, description="The `next_cursor` of the previous page (same sort "
                                                                 "and order); absent: the first page.")

    @field_validator("started_after", "started_before", mode="before")
    @classmethod
    def _iso(cls, value: object) -> object:
        if not isinstance(value, (str, datetime)) or isinstance(value, str) and not _ISO_DATE.match(value):
            raise ValueError("give an ISO 8601 date-time, e.g. 2026-07-01T00:00:00Z")
        return value

    @field_validator("started_after", "started_before")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=timezone.utc)

    @field_validator("cursor")
    @classmethod
    def _cursor_fits(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and {"sort", "order"} <= set(info.data):
            decode_cursor(value, info.data["sort"], info.data["order"])
        return value


class RunPage(BaseModel):
    """One page of runs, and the cursor of the next (None on the last page)."""

    model_config = ConfigDict(frozen=True)
    runs: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(sort: str, order: str, value: Any, run_id: int) -> str:
    """The opaque cursor after a row."""
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, order, value, run_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, order: str) -> tuple[Any, int]:
    """(sort value, run id) of a cursor; ValueError unless it was made for this sort and order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        c_sort, c_order, value, run_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValueError(f"not a cursor this server made ({type(exc).__name__})") from None
    if (c_sort, c_order) != (sort, order) or not isinstance(run_id, int) or isinstance(run_id, bool):
        raise ValueError(f"the cursor belongs to another sort or order ({c_sort!r} {c_order!r}), not {sort} {order}")
    if isinstance(value, str) and isinstance(runs.c[sort].type, UTCDateTime):
        value = datetime.fromisoformat(value)
    if not (value is None or isinstance(value, (str, int, float, datetime))) or isinstance(value, bool):
        raise ValueError("not a cursor this server made (bad value)")
    return value, run_id


def _filtered(q: RunQuery) -> Select:
    columns = [runs.c[name] for name in LIST_COLUMNS]
    query = select(*columns, systems.c.name.label("system")).join(systems, systems.c.hash == runs.c.system_hash)
    for column, value in ((runs.c.task_name, q.task), (runs.c.backend_name, q.backend),
                          (runs.c.scenario, q.scenario), (runs.c.status, q.status)):
        if value is not None:
            query = query.where(column == value)
    if q.system is not None:  # through the system hashes of that name, so ix_runs_system_hash serves it
        query = query.where(runs.c.system_hash.in_(select(systems.c.hash).where(systems.c.name == q.system)))
    if q.source == "measured":
        query = query.where(runs.c.provenance == "measured")
    elif q.source is not None:
        query = query.where(runs.c.id.in_(select(imported_runs.c.run_id).where(imported_runs.c.source == q.source)))
    if q.started_after is not None:
        query = query.where(runs.c.started_at >= q.started_after)
    if q.started_before is not None:
        query = query.where(runs.c.started_at < q.started_before)
    return query


def _paged(query: Select, q: RunQuery) -> Select:
    column, desc = runs.c[q.sort], q.order == "desc"
    if q.cursor is not None:
        value, run_id = decode_cursor(q.cursor, q.sort, q.order)
        after_id = runs.c.id < run_id if desc else runs.c.id > run_id
        if value is None:
            query = query.where(column.is_(None), after_id)
        else:
            beyond = column < value if desc else column > value
            keep = or_(beyond, and_(column == value, after_id))
            query = query.where(or_(column.is_(None), keep) if column.nullable else keep)
    if q.sort == "id":
        keys = [runs.c.id.desc() if desc else runs.c.id.asc()]
    else:
        keys = [column.is_(None).asc()] if column.nullable else []
        keys += [column.desc(), runs.c.id.desc()] if desc else [column.asc(), runs.c.id.asc()]
    return query.order_by(*keys).limit(q.limit + 1)


def query_runs(store: Store, q: RunQuery) -> RunPage:
    """One page of the runs matching a query, in its order."""
    with store.transaction(write=False) as conn:
        rows = [dict(r) for r in conn.execute(_paged(_filtered(q), q)).mappings()]
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    cursor = encode_cursor(q.sort, q.order, rows[-1][q.sort], rows[-1]["id"]) if more else None
    return RunPage(runs=rows, next_cursor=cursor)


def run_with_cards(store: Store, ref: int | str) -> dict[str, Any]:
    """One run (by id, uuid or uuid prefix) with its four cards ({kind: {hash, card}}) and, for an imported
    run, its provenance under 'imported'; RunNotFound if there is none."""
    run = store.get_run(ref)
    cards = {}
    for kind, digest in run.card_hashes.items():
        try:
            cards[kind] = {"hash": digest, "card": store.get_card(kind, digest)}
        except KeyError:
            cards[kind] = {"hash": digest, "card": None}
    return {**run.to_dict(), "cards": cards, "imported": run.imported}
