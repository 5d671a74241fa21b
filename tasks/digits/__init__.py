"""The `digits` task: 8x8 handwritten digits, a small CNN in fp32 and int8, top-1 accuracy."""

from __future__ import annotations

import os
import zipfile
from importlib import metadata
from pathlib import Path
from typing import ClassVar

import numpy as np

from runner.cards import ModelCard
from runner.task import AccuracyResult, ArraySampleLibrary, Task

__all__ = ["DigitsTask"]


class DigitsTask(Task):
    """scikit-learn's digits test split; quality: top-1 accuracy >= 99% of the fp32 reference."""

    card_file: ClassVar[Path] = Path(__file__).parent / "task.yaml"
    quality_metrics = ("top1_accuracy",)
    variants: ClassVar[tuple[str, ...]] = ("fp32", "int8")

    def _split(self):
        from tasks.digits.build_model import load_split

        split = self.card.data.split
        return load_split(seed=split.seed, test_fraction=split.test_fraction)

    def _test_split(self) -> tuple[np.ndarray, np.ndarray]:
        """The test images and labels, cached beside the models: computing them imports scikit-learn
        (about 1 s), which every isolated sweep cell would pay again."""
        split = self.card.data.split
        cache = self.models_dir / (f"digits-test-split-{split.seed}-{split.test_fraction:g}-"
                                   f"sklearn-{metadata.version('scikit-learn')}.npz")
        try:
            with np.load(cache) as data:
                return data["x_test"], data["y_test"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            pass
        _, _, x_test, y_test = self._split()
        _save(cache, x_test=x_test, y_test=y_test)
        return x_test, y_test

    def build(self, progress: bool = True, out_dir: Path | None = None) -> list[Path]:
        from tasks.digits.build_model import build

        return list(build(out_dir or self.models_dir, seed=self.card.data.split.seed, progress=progress).values())

    def sample_library(self) -> ArraySampleLibrary:
        x_test, y_test = self._test_split()
        self._labels = y_test
        perf = self.card.data.sampling.performance_sample_count
        return ArraySampleLibrary({"image": np.ascontiguousarray(x_test)}, perf, name="digits-test")

    def evaluate(self, sample_index: np.ndarray, outputs: list[np.ndarray], model: ModelCard) -> AccuracyResult:
        if not hasattr(self, "_labels"):
            self._labels = self._test_split()[1]
        predicted = np.argmax(outputs[0], axis=1)
        truth = self._labels[sample_index]
        correct = predicted == truth
        target = self.card.metrics.quality.target.resolve(model.reference_quality.fp32_reference)
        return AccuracyResult("top1_accuracy", float(correct.mean()), float(target), sample_index,
                              predicted.tolist(), truth.tolist(), correct.tolist())


def _save(path: Path, **arrays: np.ndarray) -> None:
    """Write arrays to an .npz atomically (a concurrent reader sees the old file or the new one); skip if read-only."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
