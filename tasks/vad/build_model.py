"""Build the `vad` task: silero-vad's ONNX model from its PyPI wheel (fp32, pinned), an int8 variant, the clips.

    python -m tasks.vad.build_model --out tasks/vad/models

fp32 is `silero_vad/data/silero_vad_op18_ifless.onnx` from the wheel of silero-vad (MIT), fetched with
pip from the package registry and checked against the pinned sha256 of the wheel and of the file
(tasks/_pypi.py). int8: the 16 kHz branch of the model's sample-rate `If` lifted into the main graph
(onnxruntime's quantizer does not reach into subgraphs), then onnxruntime's dynamic quantization of
its MatMul weights (the LSTM's) to int8. The Conv layers stay fp32: quantizing them too missed the
quality target on this task's clips (frame F1 0.934 against 0.963 with uint8 weights and the STFT
convolution left out, 0.03 with int8 weights; onnxruntime 1.32). The clips (tasks/vad/_speech.py) are
written beside the models as vad-clips.npz, and each card records their sha256 and F1 measured on them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from runner.task import load_task_card
from tasks import _build
from tasks._pypi import extract_pinned
from tasks.vad._speech import chunk_windows, clips_sha256, espeak_version, make_clips

__all__ = ["build", "WHEELS", "CLIPS_FILE", "CLIP_SECONDS", "SEED", "main"]

CARD = Path(__file__).parent / "task.yaml"
WHEELS = {"silero-vad==6.2.3": "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8"}
CLIPS_FILE, CLIP_SECONDS, SEED = "vad-clips.npz", 3.0, 20261204


def build(out: Path, *, clips: int, seed: int, progress: bool = True) -> dict[str, Path]:
    """Fetch fp32, quantize int8, make the clips, score both and write their cards into `out`."""
    card = load_task_card(CARD)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".build-") as tmp:
        work = Path(tmp)
        _build.log(progress, f"fetching {card.models['fp32'].source}")
        fp32 = extract_pinned({"fp32": card.models["fp32"]}, WHEELS, work, str(CARD))["fp32"]
        int8 = work / "vad-int8.onnx"
        _quantize(fp32, int8, work)
        _build.log(progress, f"speaking {clips} clips with {espeak_version()}")
        audio, labels = make_clips(clips, CLIP_SECONDS, seed)
        np.savez(work / CLIPS_FILE, clips=audio, labels=labels)
        paths = {"fp32": fp32, "int8": int8}
        scores = {v: _f1(p, chunk_windows(audio), labels) for v, p in paths.items()}
        _build.log(progress, "frame F1: " + ", ".join(f"{v} {s:.4f}" for v, s in scores.items()))
        params = {"clips": clips, "clip_seconds": CLIP_SECONDS, "clips_sha256": clips_sha256(audio, labels),
                  "espeak_ng": espeak_version()}
        cards = {v: _build.write_card(_card(card, p, v, seed, params, scores), p) for v, p in paths.items()}
        (out / CLIPS_FILE).unlink(missing_ok=True)
        (work / CLIPS_FILE).replace(out / CLIPS_FILE)
        return _build.install(paths, cards, out)


def _quantize(fp32: Path, int8: Path, work: Path) -> None:
    lifted = work / "vad-16k.onnx"
    onnx.save(lift_16k(onnx.load(fp32)), lifted)
    with _build.quiet_quantizer():
        quantize_dynamic(lifted, int8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    _build.finish_quantized(int8, producer="infersight tasks.vad", version="1", ir_version=10)
    lifted.unlink()


def lift_16k(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its sample-rate `If` replaced by the 16 kHz branch (the one using `model.*` weights,
    not `model_8k.*`); the `sr` input stays, unused."""
    graph = model.graph
    node = next(n for n in graph.node if n.op_type == "If")
    branch = next(a.g for a in node.attribute
                  if any(i.startswith("model.") for n in a.g.node for i in n.input))
    nodes = list(branch.node) + [onnx.helper.make_node("Identity", [b.name], [o])
                                 for b, o in zip(branch.output, node.output)]
    used = {i for n in nodes for i in n.input}
    graph.ClearField("node")
    graph.node.extend(nodes)
    kept = [t for t in graph.initializer if t.name in used]
    graph.ClearField("initializer")
    graph.initializer.extend(kept)
    return model


def _f1(path: Path, windows: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    from tasks.vad import VadPipeline

    session = _build.session(path)
    names = [i.name for i in session.get_inputs()]
    probs = VadPipeline(names)({"main": lambda feeds: session.run(None, dict(feeds))}, {"chunks": windows})[0]
    return float(f1_score(labels.ravel(), (probs > 0.5).ravel()))


def _card(task: Any, path: Path, variant: str, seed: int, params: dict[str, Any], scores: dict[str, float]):
    inputs, outputs = _build.signature(path)
    pin = task.models["fp32"]
    return _build.model_card(
        path, variant, task="vad", task_version=task.metadata.version, name=f"silero-vad-{variant}",
        build_info={"script": "tasks/vad/build_model.py", "seed": seed, "parameters": params,
                    "tool_versions": {"onnx": onnx.__version__, "onnxruntime": ort.__version__,
                                      "numpy": np.__version__}},
        reference_quality={"metric": "frame_f1", "value": scores[variant], "samples": params["clips"],
                           "fp32_reference": scores["fp32"]},
        inputs=inputs, outputs=outputs,
        license=pin.license, source=pin.source if variant == "fp32" else f"quantized from {pin.source}")


def main(argv: list[str] | None = None) -> int:
    return _build.run_main(argv, task="vad", doc=__doc__, build=build,
                           count=("clips", 32, "clips of speech in noise to make"),
                           seed=(SEED, "seed of the clips (sentences, voices, placement, noise)"))


if __name__ == "__main__":
    sys.exit(main())
