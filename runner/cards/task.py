"""The task card (tasks/<name>/task.yaml): what is measured, on what data, to what quality.

Format version history:
  1 (2026-11): metadata, data (datasets, split, sampling), metrics (quality, performance),
               scenarios (per-scenario setting overrides), constraints.
  1 (2026-12): data.split may be null (the dataset is used as published); + origin ("local", or
               "mlperf" for a benchmark imported with MLPerf results), left out of the dict (and
               hash) while "local".
  1 (2026-12): + models (variant -> pinned reference file: file, sha256, source, licence), left out
               of the dict (and hash) while empty.
  1 (2026-12): + declarative (a user's own model and data run without Python: runner/cards/declarative.py),
               left out of the dict (and hash) while absent.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from runner.cards._base import StrictModel
from runner.cards._compat import omit_added_defaults
from runner.cards.declarative import DeclarativeSpec

__all__ = ["TaskCard", "PinnedModel", "TaskMetadata", "TaskData", "Dataset", "Split", "Sampling", "QualityMetric",
           "QualityTarget", "TaskMetrics", "TaskConstraints"]

_SEMVER = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"


class TaskMetadata(StrictModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="Task name, as used on the command line.")
    version: str = Field(pattern=_SEMVER, description="Semantic version of the task (data, model recipe, metric).")
    description: str = Field(min_length=1, description="One paragraph on what the task measures.")
    category: Literal["image_classification", "object_detection", "text_generation", "language_model",
                      "speech", "recommendation", "other"] = Field(description="Kind of workload.")


class Dataset(StrictModel):
    name: str = Field(description="Dataset name.")
    source: str = Field(description="Where it comes from; must be local (a package that ships the data).")
    samples: int = Field(gt=0, description="Number of samples in the whole dataset.")
    license: str = Field(default="", description="Licence of the data.")


class Split(StrictModel):
    test_fraction: float = Field(gt=0, lt=1, description="Fraction held out for quality and performance runs.")
    seed: int = Field(ge=0, description="Seed of the train/test split.")
    stratify: bool = Field(default=True, description="Keep class proportions in both splits.")


class Sampling(StrictModel):
    performance_sample_count: int = Field(gt=0, description="Samples loaded for performance runs (LoadGen's performance_sample_count).")
    accuracy_samples: Literal["all"] = Field(default="all", description="Samples used by the accuracy pass.")


class TaskData(StrictModel):
    datasets: list[Dataset] = Field(min_length=1)
    split: Split | None = Field(default=None, description="Held-out split; null when the dataset is used as published.")
    sampling: Sampling


class QualityTarget(StrictModel):
    fraction_of_reference: float | None = Field(default=None, gt=0, le=1.5,
                                                description="Target as a fraction of the fp32 reference quality (0.99 = 99%).")
    absolute: float | None = Field(default=None, description="Target as an absolute value of the metric.")

    @model_validator(mode="after")
    def _one_of(self) -> "QualityTarget":
        if (self.fraction_of_reference is None) == (self.absolute is None):
            raise ValueError("give exactly one of fraction_of_reference or absolute")
        return self

    def resolve(self, reference: float) -> float:
        """The absolute target for a model whose fp32 reference quality is `reference`."""
        return self.absolute if self.absolute is not None else self.fraction_of_reference * reference


class QualityMetric(StrictModel):
    metric: str = Field(description="Quality metric name, e.g. top1_accuracy.")
    target: QualityTarget
    higher_is_better: bool = True


_PERF_METRICS = {"latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_mean_ms",
                 "samples_per_second", "queries_per_second", "tokens_per_second", "ttft_p99_ms", "tpot_p99_ms"}


class TaskMetrics(StrictModel):
    quality: QualityMetric
    performance: list[str] = Field(min_length=1, description="Performance metrics reported for this task.")

    @field_validator("performance")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - _PERF_METRICS)
        if unknown:
            raise ValueError(f"unknown performance metric(s) {unknown}; known: {sorted(_PERF_METRICS)}")
        return value


class TaskConstraints(StrictModel):
    max_latency_p90_ms: float | None = Field(default=None, gt=0)
    max_latency_p99_ms: float | None = Field(default=None, gt=0)
    server_latency_bound_ms: float | None = Field(default=None, gt=0, description="p99 latency bound in the server scenario.")
    min_quality_fraction: float | None = Field(default=None, gt=0, le=1.5)


class PinnedModel(StrictModel):
    """One reference model file of a task, pinned by its bytes (as MLPerf pins its reference checksums)."""

    file: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="File name under the task's models/ folder.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$",
                        description="sha256 of the reference file; a file with other bytes is refused.")
    source: str = Field(default="", description="Where the bytes come from: 'committed' (in the repository) "
                                                 "or 'pypi:<package>==<version>:<path in the wheel>'.")
    license: str = Field(default="", description="Licence of the model file.")


class TaskCard(StrictModel):
    card_version: Literal[1] = 1
    metadata: TaskMetadata
    data: TaskData
    metrics: TaskMetrics
    scenarios: dict[str, dict[str, Any]] = Field(
        min_length=1, description="Supported scenarios, each with overrides of that scenario's settings.")
    constraints: TaskConstraints = TaskConstraints()
    origin: Literal["local", "mlperf"] = Field(
        default="local", description="local: a task plugin of ours; mlperf: an MLPerf benchmark of imported results.")
    models: dict[str, PinnedModel] = Field(
        default_factory=dict, description="Reference model file of each variant (fp32, int8, ...), pinned by sha256.")
    declarative: DeclarativeSpec | None = Field(
        default=None, description="A task made of this card alone (no plugin): data, references, scored output.")

    _ADDED: ClassVar[tuple[str, ...]] = ("origin", "models", "declarative")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict; fields added after format 1 are left out at their defaults."""
        return omit_added_defaults(self, super().to_dict(), self._ADDED)
