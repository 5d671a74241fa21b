"""The `digits` task: 8x8 handwritten digits, a small CNN in fp32 and int8, top-1 accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from runner.cards import ModelCard
from runner.task import AccuracyResult, ArraySampleLibrary, Task

__all__ = ["DigitsTask"]


class DigitsTask(Task):
    """scikit-learn's digits test split; quality: top-1 accuracy >= 99% of the fp32 reference."""

    card_file: ClassVar[Path] = Path(__file__).parent / "task.yaml"
    variants: ClassVar[tuple[str, ...]] = ("fp32", "int8")

    def _split(self):
        from tasks.digits.build_model import load_split

        split = self.card.data.split
        return load_split(seed=split.seed, test_fraction=split.test_fraction)

    def build(self, progress: bool = True) -> list[Path]:
        from tasks.digits.build_model import build

        return list(build(self.models_dir, seed=self.card.data.split.seed, progress=progress).values())

    def sample_library(self) -> ArraySampleLibrary:
        _, _, x_test, y_test = self._split()
        self._labels = y_test
        perf = self.card.data.sampling.performance_sample_count
        return ArraySampleLibrary({"image": np.ascontiguousarray(x_test)}, perf, name="digits-test")

    def evaluate(self, sample_index: np.ndarray, outputs: list[np.ndarray], model: ModelCard) -> AccuracyResult:
        if not hasattr(self, "_labels"):
            self._labels = self._split()[3]
        predicted = np.argmax(outputs[0], axis=1)
        truth = self._labels[sample_index]
        correct = predicted == truth
        target = self.card.metrics.quality.target.resolve(model.reference_quality.fp32_reference)
        return AccuracyResult("top1_accuracy", float(correct.mean()), float(target), sample_index,
                              predicted.tolist(), truth.tolist(), correct.tolist())
