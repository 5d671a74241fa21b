"""The declarative task kind: a task made of its card alone (a user's ONNX model, data and a sklearn metric).

The card's `models` section pins the model file(s) by sha256; its `declarative` section names the data,
references and scored output (runner/cards/declarative.py). The model cards are written beside the
model files on first use (and again whenever the model, data or metric they describe changes), with
the quality measured on every sample by onnxruntime as the reference; the int8 variant is made on
request by onnxruntime's static quantizer. Every check (the model is ONNX, its inputs fit the data,
the metric is known, the pinned hashes match) runs when the model card is asked for, before a run
writes anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from runner.cards import ModelCard
from runner.cards._base import format_errors, load_yaml_with_lines
from runner.cards.model import TensorSpec
from runner.declarative.data import read_references, read_sources
from runner.declarative.feed import feed
from runner.declarative.metrics import METRICS, check_metric, score
from runner.signature import read_signature
from runner.errors import CardError, DataError, ModelFileError, PluginNotFound
from runner.task import AccuracyResult, ArraySampleLibrary, Task, file_sha256

__all__ = ["DeclarativeTask"]

SCRIPT = "runner/declarative/task.py"
_BATCH = 256


class DeclarativeTask(Task):
    """A task read from a card with a `declarative` section; `card_file` is the task.yaml's path."""

    builds_pinned_files = False  # the pinned model is the user's own file
    quality_metrics = tuple(METRICS)

    def __init__(self, card_file: Path | str) -> None:
        self.card_file = Path(card_file).resolve()
        super().__init__()
        _, self._lines = load_yaml_with_lines(self.card_file)
        spec = self.card.declarative
        if spec is None:
            raise CardError(f"{self.card_file}:1: not a declarative task card (it has no declarative section): "
                            f"a task of this kind needs its plugin installed")
        if "fp32" not in self.card.models:
            raise CardError(f"{self.where('models')}: a declarative task pins its model file as models.fp32 "
                            f"(file, sha256)")
        quality = self.card.metrics.quality
        self.metric = check_metric(quality.metric, spec.metric_options, quality.higher_is_better, self.where)
        self.spec = spec
        self.variants = ("fp32", "int8") if spec.int8 else ("fp32",)
        self._samples: tuple[dict[str, np.ndarray], np.ndarray] | None = None

    def where(self, *field: str | int) -> str:
        """`card:line: dotted.field` for messages (the line of the nearest field written in the card)."""
        for cut in range(len(field), -1, -1):
            if field[:cut] in self._lines:
                line = self._lines[field[:cut]]
                break
        else:
            line = 1
        return f"{self.card_file}:{line}: {'.'.join(map(str, field)) or '(top level)'}"

    # ------------------------------------------------------------------------------------- model files

    def model_path(self, variant: str) -> Path:
        """The variant's model file: as pinned in `models`, or <fp32 stem>-int8.onnx for an unpinned int8."""
        pin = self.card.models.get(variant)
        if pin is not None:
            return self.models_dir / pin.file
        stem = Path(self.card.models["fp32"].file).stem.removesuffix("-fp32")
        return self.models_dir / f"{stem}-{variant}.onnx"

    def model_card_path(self, variant: str) -> Path:
        path = self.model_path(variant)
        return path.with_name(path.name + ".card.json")

    def model_card(self, variant: str, verify: bool = True) -> tuple[ModelCard, Path]:
        """The variant's model card (written now if missing or stale), after every check of model and data."""
        if variant not in self.variants:
            raise PluginNotFound(f"task {self.name!r} has no model variant {variant!r}; variants: "
                                 f"{', '.join(self.variants)}" + ("" if self.spec.int8 else
                                                                 " (add declarative.int8 to the card for int8)"))
        path = self.model_path(variant)
        if variant == "int8" and not path.exists():
            self._make_int8(path)
        self._check_pin(variant, path)
        inputs, _ = self.samples()
        card = self._fresh_card(variant, path) or self._write_card(variant, path, inputs)
        return card, path

    def _check_pin(self, variant: str, path: Path) -> None:
        pin = self.card.models.get(variant)
        if pin is None:
            return
        if not path.is_file():
            raise ModelFileError(f"{self.where('models', variant, 'file')}: model file {path} not found")
        digest = file_sha256(path)
        if digest != pin.sha256:
            raise ModelFileError(f"{self.where('models', variant, 'sha256')}: {path} has sha256 {digest[:16]}..., "
                                 f"the card pins {pin.sha256[:16]}...: these are not the pinned bytes (put the new "
                                 f"sha256 in the card if the change is meant)")

    def _make_int8(self, path: Path) -> None:
        from runner.declarative.quantize import quantize_int8

        fp32 = self.model_path("fp32")
        self._check_pin("fp32", fp32)
        quantize_int8(fp32, path, self.spec.int8, self.samples()[0])

    def build(self, progress: bool = True, out_dir: Path | None = None) -> list[Path]:
        """Write every variant's model card again (the unpinned int8 file is made again too). The files stay
        beside the card: `out_dir` is for tasks that build their pinned files, and a declarative task does not."""
        if out_dir is not None and Path(out_dir).resolve() != self.models_dir.resolve():
            raise ValueError("a declarative task's files are given, not built: it builds only beside its card")
        if "int8" in self.variants and "int8" not in self.card.models:
            self.model_path("int8").unlink(missing_ok=True)
        for variant in self.variants:
            self.model_card_path(variant).unlink(missing_ok=True)
        for variant in self.variants:
            self.model_card(variant)
        return [self.model_card_path(v) for v in self.variants]

    # ------------------------------------------------------------------------------------- model cards

    def _parameters(self) -> dict[str, Any]:
        """What a model card's reference quality depends on besides the model bytes (stale when it changes)."""
        spec = self.spec
        return {"data": spec.data.file, "data_sha256": spec.data.sha256 or "", "output": spec.output or "",
                "metric": self.card.metrics.quality.metric, "metric_options": json.dumps(spec.metric_options,
                                                                                         sort_keys=True),
                "samples": len(self.samples()[1])}

    def _fresh_card(self, variant: str, path: Path) -> ModelCard | None:
        card_path = self.model_card_path(variant)
        try:
            card = ModelCard.model_validate(json.loads(card_path.read_text()))
        except (OSError, ValueError, ValidationError):
            return None
        fresh = (card.sha256 == file_sha256(path) and card.build is not None
                 and card.build.parameters == self._parameters()
                 and (card.task, card.task_version) == (self.name, self.card.metadata.version))
        return card if fresh else None

    def _write_card(self, variant: str, path: Path, inputs: dict[str, np.ndarray]) -> ModelCard:
        signature = read_signature(path)
        output = self._output_index(signature.outputs)
        value = self._quality(self._run_all(path, inputs)[output])
        reference = value if variant == "fp32" else self.model_card("fp32")[0].reference_quality.fp32_reference
        data = path.read_bytes()
        fields = {"task": self.name, "task_version": self.card.metadata.version, "name": f"{self.name}-model",
                  "variant": variant, "file": path.name, "format": "onnx", "sha256": file_sha256(path),
                  "size_bytes": len(data), "precision": "int8" if variant == "int8" else "fp32",
                  "opset": signature.opset or 1, "operators": signature.operators,
                  "build": {"script": SCRIPT, "seed": 0, "parameters": self._parameters()},
                  "inputs": [t.to_dict() for t in signature.inputs],
                  "outputs": [t.to_dict() for t in signature.outputs],
                  "reference_quality": {"metric": self.card.metrics.quality.metric, "value": value,
                                        "samples": len(self.samples()[1]), "fp32_reference": reference}}
        try:
            card = ModelCard.model_validate(fields)
        except ValidationError as exc:
            raise CardError(format_errors(exc, f"model card of {path}")) from None
        card_path = self.model_card_path(variant)
        tmp = card_path.with_name(f"{card_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, card_path)
        return card

    def _output_index(self, outputs: list[TensorSpec]) -> int:
        names = [t.name for t in outputs]
        if self.spec.output is None:
            return 0
        if self.spec.output not in names:
            raise CardError(f"{self.where('declarative', 'output')}: the model has no output {self.spec.output!r}; "
                            f"its outputs: {', '.join(names)}")
        return names.index(self.spec.output)

    def _run_all(self, path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Every sample through onnxruntime (CPU), in batches: the outputs the reference quality is taken from."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            n = len(next(iter(inputs.values())))
            parts = [session.run(None, {k: v[lo:lo + _BATCH] for k, v in inputs.items()}) for lo in range(0, n, _BATCH)]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for models it cannot run
            raise ModelFileError(f"{path}: onnxruntime cannot run the model on the data of "
                                 f"{self.where('declarative', 'data')}: {str(exc).strip().splitlines()[0][:300]}"
                                 ) from None
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]

    def _quality(self, output: np.ndarray, index: np.ndarray | None = None) -> float:
        return self._score(output, index)[0]

    def _score(self, output: np.ndarray, index: np.ndarray | None) -> tuple[float, list[Any], list[bool] | None]:
        references = self.samples()[1]
        truth = references if index is None else references[index]
        try:
            return score(self.card.metrics.quality.metric, self.spec.metric_options, output, truth)
        except ValueError as exc:
            raise DataError(f"{self.where('metrics', 'quality', 'metric')}: cannot score the model's output against "
                            f"the references: {exc}") from None

    # ------------------------------------------------------------------------------------ data, metric

    def samples(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(model input -> every sample, references), read once and checked against the fp32 model's inputs."""
        if self._samples is None:
            spec, base = self.spec, self.card_file.parent
            self._check_data_pin()
            fp32 = self.model_path("fp32")
            self._check_pin("fp32", fp32)
            signature = read_signature(fp32)
            sources = read_sources(spec, base, self.where)
            references = read_references(spec, base, sources, self.where)
            inputs = feed(spec, sources, signature.inputs, self.where)
            count = len(next(iter(inputs.values())))
            if len(references) != count:
                raise DataError(f"{self.where('declarative', 'references')}: {len(references)} references for "
                                f"{count} samples in {sources.path.name}")
            self._samples = inputs, references
        return self._samples

    def _check_data_pin(self) -> None:
        pinned = self.spec.data.sha256
        path = self.card_file.parent / self.spec.data.file
        if pinned and path.is_file() and file_sha256(path) != pinned:
            raise DataError(f"{self.where('declarative', 'data', 'sha256')}: data file {path} has sha256 "
                            f"{file_sha256(path)[:16]}..., the card pins {pinned[:16]}...")

    def sample_library(self) -> ArraySampleLibrary:
        inputs, _ = self.samples()
        perf = self.card.data.sampling.performance_sample_count
        return ArraySampleLibrary(inputs, perf, name=f"{self.name}-data")

    def evaluate(self, sample_index: np.ndarray, outputs: list[np.ndarray], model: ModelCard) -> AccuracyResult:
        output = outputs[self._output_index(model.outputs)]
        value, predicted, correct = self._score(output, sample_index)
        quality = self.card.metrics.quality
        target = quality.target.resolve(model.reference_quality.fp32_reference)
        truth = self.samples()[1][sample_index]
        return AccuracyResult(quality.metric, value, float(target), sample_index, predicted, truth.tolist(),
                              correct, quality.higher_is_better)
