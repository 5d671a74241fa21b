"""Runs: query with filters, sort and cursor pages; one run with its cards; its per-query log as Parquet."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from infersight.api.accounts import Principal
from infersight.api.auth import require
from infersight.api.models import RunDetail, RunList
from infersight.api.problems import NOT_FOUND
from runner.store.queries import RunQuery, query_runs, run_with_cards

router = APIRouter(prefix="/runs", tags=["runs"])

RunRef = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$", examples=["42"],
                             description="A run's id, uuid, or a uuid prefix of 4+ characters.")]


@router.get("", response_model=RunList, summary="Query runs")
def list_runs(request: Request, query: Annotated[RunQuery, Query()],
              principal: Principal = require("runs:read")) -> dict[str, Any]:
    """Runs matching every filter given, sorted, one page at a time: pass `next_cursor` as `cursor`."""
    page = query_runs(request.app.state.store, query)
    return {"runs": page.runs, "next_cursor": page.next_cursor}  # validated once, by the response model


@router.get("/{run_ref}", response_model=RunDetail, responses=NOT_FOUND, summary="One run with its cards and summary")
def get_run(request: Request, run_ref: RunRef, principal: Principal = require("runs:read")) -> dict[str, Any]:
    """Every stored field of a run, its summary and settings, its four cards, and an imported run's provenance."""
    return run_with_cards(request.app.state.store, run_ref)
