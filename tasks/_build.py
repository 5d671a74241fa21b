"""Helpers shared by the tasks' model builds (tasks/<task>/build_model.py).

Everything here is deterministic and writes no timestamps, so builds that use it stay byte-for-byte
reproducible: the int8 clean-up after onnxruntime's quantizers, one-thread onnxruntime sessions, the
fields every model card takes from its file, writing the cards and moving the files into place, progress
output and the command line every build script shares.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from runner.cards.model import ModelCard
from runner.declarative.quantize import quiet_quantizer

__all__ = ["quiet_quantizer", "finish_quantized", "session", "file_fields", "model_card", "write_card", "install",
           "log", "run_main", "signature"]


def finish_quantized(path: Path, *, producer: str, version: str, ir_version: int) -> None:
    """Rewrite a quantizer's output in place: keep only the opsets its nodes use (and the default one),
    stamp the build's producer and IR version, check it and save it."""
    model = onnx.load(path)
    used = {node.domain for node in model.graph.node}
    kept = [o for o in model.opset_import if o.domain in used or o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    model.producer_name, model.producer_version, model.ir_version = producer, version, ir_version
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def session(path: Path) -> ort.InferenceSession:
    """An onnxruntime session of an ONNX file (CPU, one thread)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def file_fields(path: Path) -> dict[str, Any]:
    """The model-card fields read from the file itself: sha256, size_bytes, opset and operators."""
    data = path.read_bytes()
    model = onnx.load_from_string(data)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data), "opset": opset,
            "operators": sorted({node.op_type for node in model.graph.node})}


def model_card(path: Path, variant: str, *, task: str, task_version: str, name: str, build_info: dict[str, Any],
               reference_quality: dict[str, Any], **fields: Any) -> ModelCard:
    """The card of the ONNX file at `path` (its file name, hash, size, opset and operators read from it);
    `fields` are the task's own (inputs, outputs, generation, ...)."""
    return ModelCard.model_validate({
        "task": task, "task_version": task_version, "name": name, "variant": variant, "file": path.name,
        "format": "onnx", "precision": variant, **file_fields(path), "build": build_info,
        "reference_quality": reference_quality, **fields})


def write_card(card: ModelCard, model_path: Path) -> Path:
    """Write `card` as <model file>.card.json beside the model (sorted keys, two-space indent); its path."""
    card_path = model_path.with_name(model_path.name + ".card.json")
    card_path.write_text(json.dumps(card.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return card_path


def install(paths: dict[str, Path], cards: dict[str, Path], out_dir: Path) -> dict[str, Path]:
    """Move the models, then the cards, into out_dir (so an interrupted build never leaves a card without
    its model); returns variant -> installed card path."""
    for src in [*paths.values(), *cards.values()]:
        os.replace(src, out_dir / src.name)
    return {v: out_dir / p.name for v, p in cards.items()}


def log(enabled: bool, message: str) -> None:
    """A progress line on stderr, when enabled."""
    if enabled:
        print(message, file=sys.stderr, flush=True)


def run_main(argv: list[str] | None, *, task: str, doc: str, build: Callable[..., dict[str, Path]],
             count: tuple[str, int, str | None], seed: tuple[int, str]) -> int:
    """The command line of a task's build script: --out, a count option (`count` is (name, default, help),
    e.g. epochs or steps, which must be at least 1), --seed (`seed` is (default, help)) and --quiet.

    Calls build(out, <name>=..., seed=..., progress=...) and prints the card paths it returns.
    """
    name, default, count_help = count
    parser = argparse.ArgumentParser(prog=f"python -m tasks.{task}.build_model", description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help=f"output folder (e.g. tasks/{task}/models)")
    parser.add_argument(f"--{name}", type=int, default=default, help=count_help)
    parser.add_argument("--seed", type=int, default=seed[0], help=seed[1])
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    if getattr(args, name) < 1:
        parser.error(f"--{name} must be at least 1")
    started = time.perf_counter()
    cards = build(args.out, **{name: getattr(args, name)}, seed=args.seed, progress=not args.quiet)
    log(not args.quiet, f"built in {time.perf_counter() - started:.1f}s")
    for path in cards.values():
        print(path)
    return 0


def signature(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The model-card inputs and outputs of an ONNX file as onnxruntime reads them (a dynamic dimension by
    its name, '?' where it has none)."""
    sess = session(path)
    dtypes = {"float": "float32", "double": "float64"}
    spec = lambda t: {"name": t.name, "dtype": dtypes.get(t.type[7:-1], t.type[7:-1]),  # noqa: E731 - tensor(x)
                      "shape": [d if isinstance(d, int) else str(d or "?") for d in t.shape]}
    return [spec(t) for t in sess.get_inputs()], [spec(t) for t in sess.get_outputs()]
