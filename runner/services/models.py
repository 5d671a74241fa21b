"""The requests and records of the runner's services, importable from one place (`runner.services`).

Requests are validated and frozen when made (pydantic: unknown fields, wrong types and impossible
values are refused with the field's path; `X.parse(**fields)`, runner.requests, raises a SettingsError naming
each bad field and value); records are what the store reads back, frozen too. The CLI,
the app and the REST API build these requests and render these records, nothing else.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from runner.peak import PeakSettings
from runner.requests import Record, Request
from runner.run import RunRequest
from runner.store.records import PeakSearchRecord, ProbeRecord, RunRecord, SweepCellRecord, SweepRecord

__all__ = ["RunRequest", "ReplicasRequest", "PeakSearchRequest", "SweepRequest", "RunRecord", "ReplicasRecord",
           "PeakSearchRecord", "ProbeRecord", "SweepRecord", "SweepCellRecord", "PeakSettings"]


class ReplicasRequest(Request):
    """Measure the same run several times (replicas of one configuration, for reproducibility)."""

    run: RunRequest = Field(description="The run to repeat; each replica is labelled 'repro i/n'.")
    replicas: int = Field(3, ge=2, le=100, description="How many replica runs to measure.")


class PeakSearchRequest(Request):
    """Search for the highest target QPS a server run stays VALID at (runner.peak)."""

    run: RunRequest = Field(description="The server run to probe; its target_qps (if set) is the first QPS tried.")
    search: PeakSettings = Field(default_factory=PeakSettings, description="How the search brackets and repeats.")

    @model_validator(mode="after")
    def _server(self) -> PeakSearchRequest:
        if self.run.scenario != "server":
            raise ValueError(f"a peak-QPS search needs scenario server, not {self.run.scenario!r}")
        return self


class SweepRequest(Request):
    """Run (or resume) the matrix of a sweep file, one isolated process per cell (runner.sweep)."""

    file: Path = Field(description="The sweep file (YAML).")
    new: bool = Field(False, description="Start a new sweep of this name instead of resuming the last one.")


class ReplicasRecord(Record):
    """The replica runs a `measure_replicas` made, in the order they were measured."""

    runs: tuple[RunRecord, ...]

    @property
    def run_ids(self) -> list[int]:
        """The replicas' run ids."""
        return [run.id for run in self.runs]
