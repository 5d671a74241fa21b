"""The records the store hands out: typed and frozen, never a dict of column names.

`RunRecord` is one row of `runs` (and, for a run imported from outside, where it came from), as
mlflow's `entities/run_info.py` and pyperf's immutable `Run` are: typed fields, validated once when
read, never changed after (derive a new one with `model_copy(update=...)`); `to_dict` for JSON.
`PeakSearchRecord` (with its `ProbeRecord`s) and `SweepRecord` (with its `SweepCellRecord`s) are a
peak search and a sweep as runner/store/searches.py and sweeps.py read them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RunRecord", "PeakSearchRecord", "ProbeRecord", "SweepRecord", "SweepCellRecord", "CARD_KINDS"]

CARD_KINDS = ("task", "model", "backend", "system")


class RunRecord(BaseModel):
    """One stored run: what was measured (task, model variant, backend, scenario, the four card hashes,
    settings), how it ended (status, validity and reasons, headline and accuracy figures, summary),
    and where it comes from (provenance, source, host, times; `imported` for a published result)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int = Field(description="The run's id in this store.")
    uuid: str = Field(description="The run's id everywhere (bundles, other stores).")
    task_name: str
    task_version: str
    model_variant: str
    backend_name: str
    scenario: str
    task_hash: str = Field(description="Hash of the task card the run measured.")
    model_hash: str = Field(description="Hash of the model card.")
    backend_hash: str = Field(description="Hash of the backend card.")
    system_hash: str = Field(description="Hash of the system card.")
    status: Literal["running", "complete", "failed", "aborted"]
    validity: Literal["VALID", "INVALID", "LOADGEN_LIMIT"] | None = None
    validity_reasons: list[str] | None = None
    headline_metric: str | None = None
    headline_value: float | None = None
    headline_units: str | None = None
    summary: dict[str, Any] | None = Field(None, description="The scenario's figures, CIs and effective settings.")
    settings: dict[str, Any] | None = Field(None, description="The effective settings the run was made with.")
    quick: bool
    compliant: bool
    accuracy_metric: str | None = None
    accuracy_value: float | None = None
    accuracy_target: float | None = None
    accuracy_passed: bool | None = None
    provenance: Literal["measured", "imported"]
    source: str = Field(description="What measured it ('infersight 0.x') or where it was published.")
    hostname: str
    pid: int | None = None
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    search_id: int | None = Field(None, description="The peak search this run is a probe of.")
    label: str | None = None
    imported: dict[str, Any] | None = Field(
        None, description="Where an imported run was published (round, submitter, system, ...), when asked for.")

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        """A record from a runs row (its columns, plus `imported` when the query joined it)."""
        return cls.model_validate(dict(row))

    @property
    def card_hashes(self) -> dict[str, str]:
        """The four card hashes by kind: task, model, backend, system."""
        return {kind: getattr(self, f"{kind}_hash") for kind in CARD_KINDS}

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (datetimes stay datetimes); `imported` only when present."""
        out = self.model_dump()
        if out["imported"] is None:
            del out["imported"]
        return out


class _Record(BaseModel):
    """Base of the store's records: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (datetimes stay datetimes)."""
        return self.model_dump()


class ProbeRecord(_Record):
    """One probe run of a peak search, as the search lists it."""

    run_id: int
    status: Literal["running", "complete", "failed", "aborted"]
    validity: Literal["VALID", "INVALID", "LOADGEN_LIMIT"] | None = None
    headline_value: float | None = None
    target_qps: float | None = Field(None, description="The target QPS the probe was asked for.")


class PeakSearchRecord(_Record):
    """A peak-QPS search (runner.peak): its request, status, result so far and its probe runs, oldest first."""

    id: int
    task_name: str
    backend_name: str
    scenario: str
    request: dict[str, Any] = Field(description="The run request, the search settings and the latency bound.")
    status: Literal["running", "complete", "failed", "aborted"]
    result: dict[str, Any] | None = Field(None, description="Probes, the P(VALID) table, bracket and peak_qps.")
    hostname: str
    started_at: datetime
    finished_at: datetime | None = None
    runs: tuple[ProbeRecord, ...] = ()

    @property
    def peak_qps(self) -> float | None:
        """The highest target QPS found VALID (None when there is none yet)."""
        return (self.result or {}).get("peak_qps")


class SweepCellRecord(_Record):
    """One cell of a sweep: its request, how it ended and why, and its run's headline."""

    sweep_id: int
    cell_key: str
    position: int
    request: dict[str, Any] = Field(description="The run request of the cell (runner.run.RunRequest fields).")
    status: Literal["pending", "running", "complete", "failed", "skipped"]
    reason: str | None = None
    attempts: int
    run_id: int | None = Field(None, description="The run that counts (the latest attempt).")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    validity: Literal["VALID", "INVALID", "LOADGEN_LIMIT"] | None = None
    headline_metric: str | None = None
    headline_value: float | None = None
    headline_units: str | None = None


class SweepRecord(_Record):
    """A sweep (runner.sweep): the file it came from, its status and its cells in position order."""

    id: int
    name: str
    file_path: str
    file_hash: str
    spec: dict[str, Any]
    status: Literal["running", "complete", "partial", "failed", "aborted"]
    cell_count: int
    hostname: str
    pid: int | None = None
    started_at: datetime
    finished_at: datetime | None = None
    cells: tuple[SweepCellRecord, ...] = ()
