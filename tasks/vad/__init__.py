"""The `vad` task: silero-vad (a pretrained streaming voice-activity model from PyPI) on espeak-ng speech in noise.

A sample is one clip as its model inputs per step: float32 [chunks, 576] (each 512-sample chunk with
the 64 samples before it). The task's pipeline runs the model once per chunk with the recurrent
state carried from step to step (zeros before the first), every clip of a batch side by side, and
returns the speech probability of every chunk; the quality is frame-level F1 of speech.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from runner.backends.pipeline import Step
from runner.cards import ModelCard
from runner.errors import BackendError, ModelFileError
from runner.task import AccuracyResult, ArraySampleLibrary, Task
from tasks.vad._speech import RATE, chunk_windows, clips_sha256

__all__ = ["VadTask", "VadPipeline"]

_STATE = 128


class VadPipeline:
    """One model call per chunk, the state carried: inputs {"chunks": [batch, chunks, 576]} ->
    [speech probability float32 [batch, chunks]]. Feeds only the inputs the model has (of input, state, sr)."""

    def __init__(self, model_inputs: list[str]) -> None:
        self.feeds_sr = "sr" in model_inputs

    def __call__(self, models: Mapping[str, Step], inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        chunks, run = inputs["chunks"], models["main"]
        batch, steps = chunks.shape[:2]
        feeds = {"input": chunks[:, 0], "state": np.zeros((2, batch, _STATE), np.float32)}  # input first: batch on axis 0
        if self.feeds_sr:
            feeds["sr"] = np.array(RATE, np.int64)
        probs = np.empty((batch, steps), np.float32)
        for step in range(steps):
            feeds["input"] = np.ascontiguousarray(chunks[:, step])
            out, feeds["state"] = run(feeds)
            probs[:, step] = out[:, 0]
        return [probs]


class VadTask(Task):
    """Clips of speech in noise; quality: frame F1 of speech >= 0.99 x the fp32 reference."""

    card_file: ClassVar[Path] = Path(__file__).parent / "task.yaml"
    quality_metrics = ("frame_f1",)
    variants: ClassVar[tuple[str, ...]] = ("fp32", "int8")

    def _clips(self) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_data"):
            from tasks.vad.build_model import CLIPS_FILE

            path = self.models_dir / CLIPS_FILE
            if not path.exists():
                raise ModelFileError(f"{path}: the clips of task vad are missing; run `infersight build vad`")
            with np.load(path) as data:
                self._data = data["clips"], data["labels"]
        return self._data

    def build(self, progress: bool = True, out_dir: Path | None = None) -> list[Path]:
        from tasks.vad.build_model import SEED, build

        return list(build(out_dir or self.models_dir, clips=self.card.data.datasets[0].samples, seed=SEED,
                          progress=progress).values())

    def sample_library(self) -> ArraySampleLibrary:
        clips, _ = self._clips()
        count = self.card.data.sampling.performance_sample_count
        return ArraySampleLibrary({"chunks": chunk_windows(clips)}, count, name="vad-clips")

    def pipeline(self, model: ModelCard) -> VadPipeline:
        return VadPipeline([t.name for t in model.inputs])

    def evaluate(self, sample_index: np.ndarray, outputs: list[np.ndarray], model: ModelCard) -> AccuracyResult:
        """Frame F1 of speech (scikit-learn's f1_score) over every chunk of these clips; per clip its F1."""
        from sklearn.metrics import f1_score

        clips, labels = self._clips()
        self._check_clips(model, clips, labels)
        probs, truth = np.asarray(outputs[0]), labels[sample_index]
        if probs.shape != truth.shape:
            raise BackendError(f"task vad: expected speech probabilities shaped {list(truth.shape)}, "
                               f"got {list(probs.shape)}")
        pred = (probs > 0.5).astype(np.int8)
        per_clip = [float(f1_score(t, p, zero_division=1.0)) for t, p in zip(truth, pred)]
        target = self.card.metrics.quality.target.resolve(model.reference_quality.fp32_reference)
        value = float(f1_score(truth.ravel(), pred.ravel()))
        labels_text = ["".join(map(str, t)) for t in truth]
        return AccuracyResult("frame_f1", value, float(target), sample_index, per_clip, labels_text, None)

    def _check_clips(self, model: ModelCard, clips: np.ndarray, labels: np.ndarray) -> None:
        """A model's reference quality holds only for the clips it was scored on (espeak-ng versions differ)."""
        built_on = model.build.parameters.get("clips_sha256") if model.build else None
        if built_on is not None and built_on != clips_sha256(clips, labels):
            raise ModelFileError(f"task vad: model {model.name} was scored on other clips "
                                 f"({model.build.parameters.get('espeak_ng')}); rebuild with `infersight build vad`")
