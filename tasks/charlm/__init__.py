"""The `charlm` task: a character-level GRU language model on CPython's help text, bits per character.

Samples are windows of held-out text (int64 token ids) with an all-zero recurrent state; the
accuracy pass scores each window with teacher forcing (one run_batch: the logits of every step).
The model cards carry a generation spec, so backends that stream (run_stream) can generate from
any context one model step per token.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from runner.cards import ModelCard
from runner.errors import BackendError, ModelFileError
from runner.task import AccuracyResult, ArraySampleLibrary, Task
from tasks.charlm._corpus import bits_per_char, decode, load_split, text_sha256, windows
from tasks.charlm._numpy_gru import HIDDEN

__all__ = ["CharLMTask", "WINDOW_LENGTH"]

WINDOW_LENGTH = 64


class CharLMTask(Task):
    """Held-out windows of pydoc_data text; quality: bits per character <= 1.02 x the fp32 reference."""

    card_file: ClassVar[Path] = Path(__file__).parent / "task.yaml"
    quality_metrics = ("bits_per_char",)
    variants: ClassVar[tuple[str, ...]] = ("fp32", "int8")

    def _heldout(self) -> np.ndarray:
        split = self.card.data.split
        return load_split(seed=split.seed, test_fraction=split.test_fraction)[1]

    def windows(self) -> np.ndarray:
        """The samples: int64 [performance_sample_count, 64] windows evenly spaced over the held-out text."""
        if not hasattr(self, "_windows"):
            count = self.card.data.sampling.performance_sample_count
            self._windows = windows(self._heldout(), count, WINDOW_LENGTH)
        return self._windows

    def build(self, progress: bool = True, out_dir: Path | None = None) -> list[Path]:
        from tasks.charlm.build_model import build

        return list(build(out_dir or self.models_dir, seed=self.card.data.split.seed, progress=progress).values())

    def sample_library(self) -> ArraySampleLibrary:
        tokens = self.windows()
        state = np.zeros((len(tokens), HIDDEN), np.float32)
        return ArraySampleLibrary({"tokens": tokens, "state": state}, len(tokens), name="charlm-heldout")

    def evaluate(self, sample_index: np.ndarray, outputs: list[np.ndarray], model: ModelCard) -> AccuracyResult:
        """Bits per character of each window (predicting characters 2..64); the metric is their mean.

        Logits whose time axis is 1 (a backend answering every step alike, e.g. `null`) count for every step.
        """
        self._check_text(model)
        tokens = self.windows()[sample_index]
        logits = np.asarray(outputs[0])
        if logits.ndim != 3 or logits.shape[0] != len(tokens) or logits.shape[1] not in (1, tokens.shape[1]):
            raise BackendError(f"task charlm: expected logits shaped [{len(tokens)}, {tokens.shape[1]}, vocab], "
                            f"got {list(logits.shape)}")
        logits = np.broadcast_to(logits, (*tokens.shape, logits.shape[2]))
        per_window = bits_per_char(logits, tokens)
        quality = self.card.metrics.quality
        target = quality.target.resolve(model.reference_quality.fp32_reference)
        return AccuracyResult("bits_per_char", float(per_window.mean()), float(target), sample_index,
                              per_window.tolist(), [decode(w) for w in tokens], None,
                              higher_is_better=quality.higher_is_better)

    def _check_text(self, model: ModelCard) -> None:
        """A model's reference quality holds only for the held-out text it was built with (CPython's text varies)."""
        built_on = model.build.parameters.get("heldout_sha256") if model.build else None
        if built_on is not None and built_on != text_sha256(self._heldout()):
            raise ModelFileError(f"task charlm: model {model.name} {model.variant} was built on other held-out text "
                                 f"({model.build.parameters.get('corpus')}); rebuild it with `infersight build charlm`")
