"""The run bundle format: one manifest and, per run, its four cards and two logs.

Layout (a folder, a .zip, or a .tar / .tar.gz / .tgz archive of the same files):
  bundle.json                         the manifest (BundleManifest): format, version, exporting host,
                                      and per run its folder and the sha256 and size of every file
  runs/<uuid>/run.json                the run (RunFile): identity, status, host, times, card hashes
  runs/<uuid>/cards/<kind>.json       the task, model, backend and system cards, as stored (hashed as is)
  runs/<uuid>/performance.json        the performance log's summary (PerformanceFile): settings, summary,
                                      validity, headline, and the number and names of its per-query columns
  runs/<uuid>/performance.npz         the per-query records: one int64 array per column (no pickles)
  runs/<uuid>/accuracy.json           the accuracy log (AccuracyFile): the metric against its target and
                                      one record per sample

Format version history:
  1 (2026-12): the layout above.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field

from runner.cards import BackendCard, ModelCard, SystemCard, TaskCard
from runner.cards._base import StrictModel

__all__ = ["FORMAT", "BUNDLE_VERSION", "MANIFEST", "CARD_KINDS", "CARD_MODELS", "BundleFile", "BundleEntry",
           "BundleManifest", "RunFile", "PerformanceFile", "AccuracyRecord", "AccuracyFile", "run_files",
           "SOURCE_MARK"]

FORMAT = "infersight-run-bundle"
BUNDLE_VERSION = 1
MANIFEST = "bundle.json"
CARD_KINDS = ("task", "model", "backend", "system")
CARD_MODELS = {"task": TaskCard, "model": ModelCard, "backend": BackendCard, "system": SystemCard}
SOURCE_MARK = "run bundle"  # in runs.source of an imported bundle run: "<source>; run bundle <hash> from <host>"


def run_files() -> tuple[str, ...]:
    """The files of one run's folder, relative to it."""
    return ("run.json", *(f"cards/{kind}.json" for kind in CARD_KINDS), "performance.json", "performance.npz",
            "accuracy.json")


class BundleFile(StrictModel):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)


class BundleEntry(StrictModel):
    uuid: str = Field(pattern=r"^[0-9a-f-]{36}$")
    folder: str = Field(pattern=r"^runs/[0-9a-f-]{36}$")
    files: dict[str, BundleFile]


class BundleManifest(StrictModel):
    format: Literal["infersight-run-bundle"]
    bundle_version: int = Field(description="Format version of the bundle (see runner/bundles/_format.py).")
    created_at: AwareDatetime
    exported_by: str = Field(description="The infersight version that wrote the bundle.")
    hostname: str = Field(description="The host whose store the runs were exported from.")
    store_schema_version: int
    runs: list[BundleEntry] = Field(min_length=1)


class RunFile(StrictModel):
    uuid: str = Field(pattern=r"^[0-9a-f-]{36}$")
    task_name: str
    task_version: str
    model_variant: str
    backend_name: str
    scenario: str
    status: Literal["complete", "failed", "aborted"]
    error: str | None = None
    quick: bool
    compliant: bool
    source: str
    label: str | None = None
    hostname: str = Field(min_length=1, description="The host that measured the run.")
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    cards: dict[Literal["task", "model", "backend", "system"], str]


class PerformanceFile(StrictModel):
    records: int = Field(ge=0, description="Number of per-query records in performance.npz.")
    columns: list[str]
    settings: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    validity: Literal["VALID", "INVALID"] | None = None
    validity_reasons: list[str] | None = None
    headline_metric: str | None = None
    headline_value: float | None = None
    headline_units: str | None = None


class AccuracyRecord(StrictModel):
    sample_index: int
    prediction: Any = None
    reference: Any = None
    correct: bool | None = None


class AccuracyFile(StrictModel):
    records: int = Field(ge=0)
    accuracy_metric: str | None = None
    accuracy_value: float | None = None
    accuracy_target: float | None = None
    accuracy_passed: bool | None = None
    samples: list[AccuracyRecord]
