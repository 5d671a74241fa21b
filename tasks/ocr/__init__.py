"""The `ocr` task: PP-OCRv4 text detection + recognition (pretrained, from rapidocr-onnxruntime on PyPI) on
images of text rendered here with Debian's fonts.

A sample is one image (uint8 [128, 512, 3]); the task's pipeline (tasks/ocr/_pipeline.py) runs the
detector on the batch, crops its boxes and runs the recogniser on the crops, so a query's latency is
the whole per-image OCR a user waits for. Quality is character accuracy: 1 - (Levenshtein edits /
reference characters) over all images (rapidfuzz).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from runner.cards import ModelCard
from runner.errors import BackendError, ModelFileError
from runner.task import AccuracyResult, ArraySampleLibrary, Task
from tasks.ocr._pipeline import OcrPipeline
from tasks.ocr._render import images_sha256

__all__ = ["OcrTask", "character_accuracy"]


def character_accuracy(found: list[str], texts: list[str]) -> tuple[float, list[int]]:
    """1 - total Levenshtein distance / total reference characters, and the distance of each image."""
    from rapidfuzz.distance import Levenshtein

    edits = [Levenshtein.distance(str(a), b) for a, b in zip(found, texts)]
    return 1.0 - sum(edits) / max(1, sum(len(t) for t in texts)), edits


class OcrTask(Task):
    """Rendered two-line images; quality: character accuracy >= 0.99 x the fp32 reference."""

    card_file: ClassVar[Path] = Path(__file__).parent / "task.yaml"
    quality_metrics = ("character_accuracy",)
    variants: ClassVar[tuple[str, ...]] = ("fp32", "int8")

    def _images(self) -> tuple[np.ndarray, list[str]]:
        if not hasattr(self, "_data"):
            from tasks.ocr.build_model import IMAGES_FILE

            path = self.models_dir / IMAGES_FILE
            if not path.exists():
                raise ModelFileError(f"{path}: the images of task ocr are missing; run `infersight build ocr`")
            with np.load(path) as data:
                self._data = data["images"], [str(t) for t in data["texts"]]
        return self._data

    def build(self, progress: bool = True, out_dir: Path | None = None) -> list[Path]:
        from tasks.ocr.build_model import SEED, build

        return list(build(out_dir or self.models_dir, images=self.card.data.datasets[0].samples, seed=SEED,
                          progress=progress).values())

    def sample_library(self) -> ArraySampleLibrary:
        images, _ = self._images()
        return ArraySampleLibrary({"image": images}, self.card.data.sampling.performance_sample_count,
                                  name="ocr-images")

    def pipeline(self, model: ModelCard) -> OcrPipeline:
        from tasks.ocr.build_model import characters

        rec = next((p for p in model.parts if p.name == "rec"), None)
        if rec is None:
            raise ModelFileError(f"task ocr: model card {model.name} names no part 'rec' (the recogniser)")
        return OcrPipeline(characters(self.models_dir / self.card.models["fp32-rec"].file),
                           model.inputs[0].name, rec.inputs[0].name)

    def evaluate(self, sample_index: np.ndarray, outputs: list[np.ndarray], model: ModelCard) -> AccuracyResult:
        images, texts = self._images()
        self._check_images(model, images, texts)
        found = list(np.asarray(outputs[0], dtype=object))
        if len(found) != len(sample_index):
            raise BackendError(f"task ocr: expected {len(sample_index)} texts, got {len(found)}")
        refs = [texts[i] for i in sample_index]
        value, _ = character_accuracy(found, refs)
        target = self.card.metrics.quality.target.resolve(model.reference_quality.fp32_reference)
        return AccuracyResult("character_accuracy", float(value), float(target), sample_index,
                              [str(f) for f in found], refs, None)

    def _check_images(self, model: ModelCard, images: np.ndarray, texts: list[str]) -> None:
        """A model's reference quality holds only for the images it was scored on (fonts and Pillow differ)."""
        built_on = model.build.parameters.get("images_sha256") if model.build else None
        if built_on is not None and built_on != images_sha256(images, texts):
            raise ModelFileError(f"task ocr: model {model.name} was scored on other images; "
                                 f"rebuild with `infersight build ocr`")
