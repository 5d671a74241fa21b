"""The records the store hands out: typed and frozen, never a dict of column names.

`RunRecord` is one row of `runs` (and, for a run imported from outside, where it came from), as
mlflow's `entities/run_info.py` and pyperf's immutable `Run` are: typed fields, validated once when
read, never changed after (derive a new one with `model_copy(update=...)`); `to_dict` for JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RunRecord", "CARD_KINDS"]

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
