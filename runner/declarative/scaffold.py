"""`infersight task new`: a task folder with a card that runs at once, made from a user's .onnx and data.

The folder is written under a temporary name beside its destination and renamed into place only when
the card opens, the data fits the model and the model cards are written: a failure leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from runner import registry
from runner.cards._base import StrictModel
from runner.cards.declarative import DeclarativeSpec
from runner.cards.model import TensorSpec
from runner.declarative.data import read_references, read_sources
from runner.declarative.metrics import METRICS
from runner.signature import Signature, read_signature
from runner.declarative.task import DeclarativeTask
from runner.declarative.template import card_text
from runner.errors import DataError, InfersightError, SettingsError
from runner.task import file_sha256
from runner.user_tasks import user_folders

__all__ = ["NewTaskRequest", "new_task", "shown"]

_LABEL_GUESSES = ("label", "labels", "y", "target", "targets", "class")


class NewTaskRequest(StrictModel):
    """What `infersight task new` was asked for."""

    name: str = Field(description="Task name (lowercase letters, digits, - and _).")
    model: Path = Field(description="The ONNX model file.")
    data: Path = Field(description="The data: .npz, .npy, .csv, .parquet or a folder of images.")
    labels: str | None = Field(None, description="References: a key or column of the data, a file, or 'subfolders'.")
    metric: str | None = Field(None, description="scikit-learn metric (default: accuracy for class ids, else mse).")
    metric_options: dict[str, int | float | str] = Field(default_factory=dict,
                                                         description="Options of the metric (top_k_accuracy: k).")
    target: str | None = Field(None, description="0.95: an absolute target; 99%: a fraction of the fp32 quality.")
    out: Path | None = Field(None, description="The task folder (default: <user task folder>/NAME).")
    int8: bool = Field(False, description="Also make an int8 variant with onnxruntime's quantize_static.")


def new_task(req: NewTaskRequest) -> Path:
    """Scaffold the task folder; returns the path of its task.yaml."""
    _check_name(req.name)
    out = (req.out or user_folders()[0] / req.name).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SettingsError(f"--out {out}: exists and is not an empty folder; choose another or remove it")
    signature = read_signature(req.model)
    if not req.data.exists():
        raise DataError(f"--data {req.data}: not found")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.new-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        try:
            _fill(req, tmp, signature)
        except InfersightError as exc:  # name the folder being made, not its temporary name
            raise type(exc)(str(exc).replace(str(tmp), str(out))) from None
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "task.yaml"


def _check_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise SettingsError(f"task name {name!r}: use lowercase letters, digits, - and _, starting with a letter")
    if name in registry.names("task"):
        raise SettingsError(f"task name {name!r}: a built-in task has this name; choose another")


def _fill(req: NewTaskRequest, tmp: Path, signature: Signature) -> None:
    (tmp / "models").mkdir(parents=True)
    (tmp / "data").mkdir()
    model_file = f"{req.name}-fp32.onnx"
    shutil.copyfile(req.model, tmp / "models" / model_file)
    data_file = _copy(req.data, tmp / "data")
    references = _references(req, tmp, data_file)
    fields = _fields(req, signature, model_file, data_file, references)
    fields.update(_metric(req, tmp, fields, signature.outputs[0]), int8=req.int8, int8_sha256=None)
    card = tmp / "task.yaml"
    card.write_text(card_text(fields), encoding="utf-8")
    task = DeclarativeTask(card)
    for variant in task.variants:
        task.model_card(variant)
    fields.update(_server_estimate(task))
    if req.int8:
        int8 = task.model_path("int8")
        fields.update(int8_sha256=file_sha256(int8), int8_file=int8.name)
    card.write_text(card_text(fields), encoding="utf-8")
    final = DeclarativeTask(card)
    for variant in final.variants:
        final.model_card(variant)


def shown(path: Path) -> Path:
    """`path` relative to the working directory when it lies below it (as a user would type it)."""
    try:
        return path.absolute().relative_to(Path.cwd())
    except ValueError:
        return path


def _copy(src: Path, folder: Path) -> str:
    dest = folder / src.name
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copyfile(src, dest)
    return f"data/{src.name}"


def _references(req: NewTaskRequest, tmp: Path, data_file: str) -> dict:
    labels = req.labels
    if labels == "subfolders":
        return {"subfolders": True}
    if labels is not None and Path(labels).is_file():
        return {"file": _copy(Path(labels), tmp / "data")}
    probe = DeclarativeSpec.model_validate({"data": {"file": data_file}, "references": {"subfolders": True}})
    sources = read_sources(probe, tmp, lambda *f: f"--data {req.data}")
    way = "key" if sources.kind == "arrays" else "column"
    if sources.kind == "images":
        if labels is not None:
            raise DataError(f"--labels {labels}: not a file; for a folder of images give a file of references "
                            f"or 'subfolders' (one subfolder per class)")
        return {"subfolders": True}
    if labels is not None:
        if labels not in sources.arrays:
            raise DataError(f"--labels {labels}: not a file, and {req.data} has no {way} {labels!r}; it has "
                            f"{sources.describe()}")
        return {way: labels}
    guess = next((name for name in _LABEL_GUESSES if name in sources.arrays), None)
    if guess is None:
        raise DataError(f"--labels: {req.data} has {sources.describe()} and none is named like references "
                        f"({', '.join(_LABEL_GUESSES)}); give --labels KEY_OR_COLUMN or --labels FILE")
    return {way: guess}


def _fields(req: NewTaskRequest, signature: Signature, model_file: str, data_file: str, references: dict) -> dict:
    data = req.data
    return {"name": req.name, "card_hint": shown(req.out or user_folders()[0] / req.name) / "task.yaml",
            "description": f"{req.model.name} on {data.name}: a user's own ONNX model and data (scaffolded).",
            "category": "image_classification" if data.is_dir() else "other",
            "data_name": data.name, "data_source": f"user data, copied from {data.absolute()}",
            "license": "unknown (the user's own)", "model_file": model_file,
            "model_sha256": file_sha256(req.model), "model_source": f"user file, copied from {req.model.absolute()}",
            "data_file": data_file, "data_sha256": file_sha256(data) if data.is_file() else None,
            "inputs": {}, "references": references, "output": signature.outputs[0].name,
            "samples": 1, "perf_count": 1, "target_qps": 100, "latency_bound_ms": 100}


def _metric(req: NewTaskRequest, tmp: Path, fields: dict, output: TensorSpec) -> dict:
    """Metric, target and the sample counts; by default accuracy for whole-number references and an output
    of class scores [batch, classes] or of integer class ids, else mse."""
    spec = DeclarativeSpec.model_validate({"data": {"file": fields["data_file"]}, "references": fields["references"]})
    sources = read_sources(spec, tmp, lambda *f: f"--data {req.data}")
    refs = read_references(spec, tmp, sources, lambda *f: f"--labels {req.labels or ''}".strip())
    integral = refs.dtype.kind in "biu" or bool(np.all(np.mod(refs, 1) == 0))
    classes = output.dtype.startswith("int") or (len(output.shape) == 2 and output.shape[1] != 1)
    metric = req.metric or ("accuracy" if integral and classes else "mse")
    if metric not in METRICS:
        raise SettingsError(f"--metric {metric}: unknown metric; known metrics: {', '.join(METRICS)}")
    higher = METRICS[metric].higher_is_better
    kind, value = _target(req.target or ("99%" if higher else "101%"))
    return {"metric": metric, "higher_is_better": higher, "target_kind": kind, "target_value": value,
            "metric_options": req.metric_options, "samples": len(refs), "perf_count": min(len(refs), 100_000)}


def _target(text: str) -> tuple[str, float]:
    try:
        if text.endswith("%"):
            return "fraction", round(float(text[:-1]) / 100, 6)
        return "absolute", float(text)
    except ValueError:
        raise SettingsError(f"--target {text}: give a number (an absolute target, e.g. 0.95) or a percentage of "
                            f"the fp32 model's own quality (e.g. 99%)") from None


def _server_estimate(task: DeclarativeTask) -> dict:
    """A server target of half one thread's single-sample rate (at most 500 QPS: the issuing costs CPU too),
    and a latency bound of 20x its latency (at least 20 ms); `infersight peak` finds the real edge."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(task.model_path("fp32")), options, providers=["CPUExecutionProvider"])
    inputs, _ = task.samples()
    one = {k: v[:1] for k, v in inputs.items()}
    session.run(None, one)
    started = time.perf_counter()
    for _ in range(20):
        session.run(None, one)
    latency_s = max((time.perf_counter() - started) / 20, 1e-6)
    return {"target_qps": int(min(max(0.5 / latency_s, 1), 500)),
            "latency_bound_ms": float(max(20, round(20 * latency_s * 1e3)))}
