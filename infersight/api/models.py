"""Response models of the REST API (the OpenAPI schema is generated from them)."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CardEntry", "Me", "RunDetail", "RunItem", "RunList", "plain"]

_RUN_EXAMPLE = {
    "id": 42, "uuid": "3f2b8c1e-5d7a-4e1b-9a0c-2b7d9e4f6a18", "task_name": "digits", "task_version": "1.0.0",
    "model_variant": "fp32", "backend_name": "onnxruntime", "scenario": "offline", "system": "lab-box-1",
    "status": "complete", "validity": "VALID", "headline_metric": "samples_per_second",
    "headline_value": 18250.5, "headline_units": "samples/s", "accuracy_metric": "top1",
    "accuracy_value": 0.9722, "accuracy_passed": True, "quick": False, "compliant": True,
    "provenance": "measured", "source": "infersight run digits --scenario offline", "hostname": "lab-box-1",
    "started_at": "2026-12-01T10:00:00Z", "finished_at": "2026-12-01T10:01:02Z", "label": None,
    "system_hash": "9" * 64}


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


class RunItem(_Out):
    """A run in a list: its identity, status, headline and accuracy (no summary or settings)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RUN_EXAMPLE]})
    id: int
    uuid: str
    task_name: str
    task_version: str
    model_variant: str
    backend_name: str
    scenario: str
    system: str = Field(description="The name of the run's system card.")
    status: Literal["running", "complete", "failed", "aborted"]
    validity: Literal["VALID", "INVALID", "LOADGEN_LIMIT"] | None
    headline_metric: str | None
    headline_value: float | None
    headline_units: str | None
    accuracy_metric: str | None
    accuracy_value: float | None
    accuracy_passed: bool | None
    quick: bool
    compliant: bool
    provenance: Literal["measured", "imported"]
    source: str
    hostname: str
    started_at: datetime
    finished_at: datetime | None
    label: str | None
    system_hash: str


class RunList(_Out):
    """A page of runs and the cursor of the next page."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"runs": [_RUN_EXAMPLE], "next_cursor": None}]})
    runs: list[RunItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class CardEntry(_Out):
    """One of a run's four cards, by hash."""

    hash: str
    card: dict[str, Any] | None = Field(description="The card; null if the store lacks it.")


class RunDetail(_Out):
    """One run: every stored field, its summary, settings and four cards, and where an imported run came from."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        **{k: v for k, v in _RUN_EXAMPLE.items() if k != "system"},
        "summary": {"samples_per_second": 18250.5, "latency_p99_ms": 1.9}, "settings": {"scenario": {}},
        "cards": {kind: {"hash": "0" * 64, "card": {"name": "..."}} for kind in ("task", "model", "backend", "system")},
        "imported": None}]})
    id: int
    uuid: str
    task_name: str
    backend_name: str
    scenario: str
    status: str
    summary: dict[str, Any] | None
    settings: dict[str, Any] | None
    cards: dict[str, CardEntry]
    imported: dict[str, Any] | None


class Me(_Out):
    """The authenticated user, role, token, and what it may do."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "user": "ana", "role": "viewer", "token_id": "a1b2c3d4e5f6", "scopes": None,
        "actions": ["account:read", "runs:read"]}]})
    user: str
    role: Literal["viewer", "submitter", "reviewer", "admin"]
    token_id: str
    scopes: list[str] | None = Field(description="The actions the token is limited to; null: all the role allows.")
    actions: list[str] = Field(description="Every action this token may use.")


def plain(value: Any) -> Any:
    """A workflow's result as plain JSON values: numpy numbers as Python ones, NaN and infinities as null,
    dates as ISO 8601, anything else unknown as its text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if value is pd.NaT:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)
