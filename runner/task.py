"""The task plugin interface: a task card, model variants with their cards, data and a quality metric.

Tasks live in tasks/<name>/ and are found through the registry (entry point group
`infersight.tasks`); the runner never imports them directly.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import ValidationError

from runner import registry
from runner.backends.pipeline import Pipeline
from runner.cards import ModelCard, TaskCard
from runner.cards._base import format_errors, load_yaml_with_lines, validate_file
from runner.loading import load_json, read_text
from runner.errors import CardError, ModelFileError, PluginNotFound
from runner.loadgen.interfaces import SampleLibrary
from runner.signature import card_mismatches, read_signature

__all__ = ["Task", "AccuracyResult", "ArraySampleLibrary", "load_task_card", "load_model_card", "file_sha256",
           "relative"]


@dataclass
class AccuracyResult:
    """The accuracy log of a run: per-sample predictions and the quality metric against its target."""

    metric: str
    value: float
    target: float
    sample_index: np.ndarray
    predictions: list[Any]
    references: list[Any]
    correct: list[bool] | None = None
    higher_is_better: bool = True

    @property
    def passed(self) -> bool:
        """The metric meets its target: at least the target, or at most it for a lower-is-better metric."""
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


class ArraySampleLibrary(SampleLibrary):
    """A sample library over in-memory arrays (one array per model input, samples on axis 0)."""

    def __init__(self, inputs: dict[str, np.ndarray], performance_sample_count: int, name: str = "samples"):
        self.inputs, self.name = inputs, name
        self._total = len(next(iter(inputs.values())))
        self._perf = min(performance_sample_count, self._total)
        self._items = list(inputs.items())
        self._only = self._items[0] if len(self._items) == 1 else None  # one input: no comprehension per query

    @property
    def total_sample_count(self) -> int:
        return self._total

    @property
    def performance_sample_count(self) -> int:
        return self._perf

    def get(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        # take(): the same copy as arr[indices], about twice as fast for the one-sample queries of the server
        if self._only is not None:
            return {self._only[0]: self._only[1].take(indices, axis=0)}
        return {name: arr.take(indices, axis=0) for name, arr in self._items}


class Task(ABC):
    """A task plugin. Subclasses set `card_file` and `variants` and implement data and metric."""

    card_file: ClassVar[Path]
    variants: ClassVar[tuple[str, ...]] = ("fp32",)
    #: True when `build` makes the pinned files from local sources (a rebuild can be compared with its pin);
    #: False when the pinned files are given, not built (a user's own model): they are their own reference.
    builds_pinned_files: ClassVar[bool] = True
    #: The quality metrics `evaluate` computes: the task card's metrics.quality.metric must name one.
    quality_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        if not self.quality_metrics:
            raise CardError(f"{self.card_file}: task plugin {type(self).__name__} declares no quality_metrics "
                            f"(the metrics its evaluate computes), so its card's metric cannot be checked")
        self.card: TaskCard = load_task_card(self.card_file, self.quality_metrics)

    @property
    def name(self) -> str:
        return self.card.metadata.name

    @property
    def models_dir(self) -> Path:
        """Where the task's build writes model files and their cards."""
        return self.card_file.parent / "models"

    def model_card_path(self, variant: str) -> Path:
        return self.models_dir / f"{self.name}-{variant}.onnx.card.json"

    def model_card(self, variant: str, verify: bool = True) -> tuple[ModelCard, Path]:
        """The model card of a variant and its model file, checked against the sha256 the task card pins
        (when it pins one) and the model card's own."""
        if variant not in self.variants:
            raise PluginNotFound(f"task {self.name!r} has no model variant {variant!r}; "
                                 f"variants: {', '.join(self.variants)}")
        card, path = load_model_card(self.model_card_path(variant), self.name, verify,
                                     metric=self.card.metrics.quality.metric)
        if verify:
            self._verify_pin(variant, card, path)
        return card, path

    def _verify_pin(self, variant: str, card: ModelCard, path: Path) -> None:
        """Raise ModelFileError unless the variant's file (whose bytes match its card: checked before) has the
        bytes the task card pins (no pin: no check)."""
        pin = self.card.models.get(variant)
        if pin is None:
            return
        if path.name != pin.file or card.sha256 != pin.sha256:
            raise ModelFileError(f"{path}: sha256 {card.sha256} does not match the sha256 {pin.sha256} of "
                                 f"{pin.file} pinned in {relative(self.card_file)} (models.{variant}): not the "
                                 f"task's reference model; restore it with `git checkout -- "
                                 f"{relative(self.models_dir)}` (`infersight build {self.name} --check` says "
                                 f"whether this machine's rebuild reproduces it)")

    def pipeline(self, model: ModelCard) -> Pipeline | None:
        """The Python a task runs around its model calls (pre- and post-processing, a state carried from
        chunk to chunk, a second model fed by the first), or None when a batch is one plain model call.

        When a task gives one, each model file (the card's own, named 'main', and its `parts`) is
        prepared on its own instance of the run's backend, and every batch goes through the pipeline.
        """
        return None

    @abstractmethod
    def build(self, progress: bool = True, out_dir: Path | None = None) -> list[Path]:
        """Build every model variant deterministically into out_dir (default: models_dir); return the card paths.

        Call it through runner.pins.build_task, which never replaces a pinned file with different bytes."""

    @abstractmethod
    def sample_library(self) -> SampleLibrary:
        """The held-out samples, as model inputs."""

    @abstractmethod
    def evaluate(self, sample_index: np.ndarray, outputs: list[np.ndarray], model: ModelCard) -> AccuracyResult:
        """Compute the quality metric from the model outputs of these samples."""


def load_task_card(path: Path, quality_metrics: tuple[str, ...] = ()) -> TaskCard:
    """Validate a task.yaml: the card itself, its quality metric (one of the task's `quality_metrics`, when
    given), then each scenario section against that scenario's settings."""
    card = validate_file(TaskCard, path)
    _, lines = load_yaml_with_lines(path)
    metric = card.metrics.quality.metric
    if quality_metrics and metric not in quality_metrics:
        line = lines.get(("metrics", "quality", "metric"), 1)
        raise CardError(f"{path}:{line}: metrics.quality.metric: unknown metric {metric!r} for task "
                        f"{card.metadata.name!r}; known metrics: {', '.join(quality_metrics)}")
    for scenario, overrides in card.scenarios.items():
        try:
            cls = registry.get("scenario", scenario)
        except PluginNotFound as exc:
            line = lines.get(("scenarios", scenario))
            raise CardError(f"{path}:{line}: scenarios.{scenario}: {exc}") from None
        try:
            cls.Settings.model_validate(overrides or {})
        except ValidationError as exc:
            raise CardError(format_errors(exc, str(path), lines, ("scenarios", scenario))) from None
    return card


def load_model_card(card_path: Path, task: str, verify: bool = True,
                    metric: str | None = None) -> tuple[ModelCard, Path]:
    """Read a model card JSON: its reference quality is in the task's `metric` (when given), and (`verify`)
    its model file exists, matches its sha256 and has the inputs and outputs the card describes."""
    if not card_path.exists():
        raise ModelFileError(f"{card_path}: model card not found: the models of task {task!r} are not built; "
                             f"run `infersight build {task}`")
    data, lines = load_json(read_text(card_path), str(card_path))
    try:
        card = ModelCard.model_validate(data)
    except ValidationError as exc:
        raise CardError(format_errors(exc, str(card_path), lines)) from None
    quality = card.reference_quality
    if metric is not None and quality is not None and quality.metric != metric:
        line = lines.get(("reference_quality", "metric"), 1)
        raise CardError(f"{card_path}:{line}: reference_quality.metric: the model card says "
                        f"{quality.metric!r}, the task's quality metric is {metric!r}")
    model_path = card_path.parent / card.file
    if verify:
        _verify(card.sha256, model_path, task)
        for part in card.parts:
            _verify(part.sha256, card_path.parent / part.file, task)
        _check_signatures(card, card_path, lines)
    return card, model_path


def _check_signatures(card: ModelCard, card_path: Path, lines: dict[tuple, int]) -> None:
    """ModelFileError unless the card's inputs and outputs (and each part's) are the model file's own: every
    name, dtype and shape, each mismatch said as the card's field, what the card says and what the file has."""
    problems = []
    for prefix, spec in [((), card), *((("parts", j), part) for j, part in enumerate(card.parts))]:
        signature = read_signature(card_path.parent / spec.file, check=False)
        for side, theirs in (("inputs", signature.inputs), ("outputs", signature.outputs)):
            for field, says, has in card_mismatches(side, getattr(spec, side), theirs):
                loc = prefix + field
                line = next((lines[loc[:cut]] for cut in range(len(loc), -1, -1) if loc[:cut] in lines), 1)
                problems.append(f"{card_path}:{line}: {'.'.join(map(str, loc))}: the model card says {says}, "
                                f"the model file {spec.file} has {has}")
    if problems:
        raise ModelFileError("\n".join(problems))


def _verify(sha256: str, model_path: Path, task: str) -> None:
    if not model_path.exists():
        raise ModelFileError(f"{model_path}: model file missing (named by its model card); "
                             f"rebuild it with `infersight build {task}`")
    digest = file_sha256(model_path)
    if digest != sha256:
        raise ModelFileError(f"{model_path}: model file is corrupt or was changed: sha256 {digest[:16]}... "
                             f"differs from {sha256[:16]}... in its model card; "
                             f"rebuild it with `infersight build {task}`")


def relative(path: Path) -> str:
    """A path relative to the working directory when under it (what a user types), else as given."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
