"""Build the `ocr` task: PP-OCRv4's detector and recogniser from the rapidocr-onnxruntime wheel (fp32, pinned),
an int8 variant of both, and the rendered images.

    python -m tasks.ocr.build_model --out tasks/ocr/models

fp32 is `models/ch_PP-OCRv4_det_infer.onnx` and `models/ch_PP-OCRv4_rec_infer.onnx` from the wheel of
rapidocr-onnxruntime (Apache-2.0), fetched with pip from the package registry and checked against the
pinned sha256 of the wheel and of each file (tasks/_pypi.py). int8: onnxruntime's static quantization
(QDQ, calibrated on images rendered with another seed) of the detector's Conv layers (with its Mul
layers quantized too, OpenVINO 2026.4 cannot compile it), and dynamic quantization of the
recogniser's MatMul weights. The images (tasks/ocr/_render.py) are written beside the models as
ocr-images.npz; each card records their sha256 and the character accuracy measured on them.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                      quantize_static)

from runner.task import load_task_card
from tasks import _build
from tasks._pypi import extract_pinned
from tasks.ocr._pipeline import OcrPipeline, detect_input
from tasks.ocr._render import images_sha256, render

__all__ = ["build", "WHEELS", "IMAGES_FILE", "SEED", "characters", "main"]

CARD = Path(__file__).parent / "task.yaml"
WHEELS = {"rapidocr-onnxruntime==1.4.4": "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"}
IMAGES_FILE, CALIBRATION_IMAGES, SEED = "ocr-images.npz", 8, 20261205


def characters(rec_path: Path) -> list[str]:
    """The recogniser's character list, from its ONNX metadata 'character' (one per line)."""
    meta = {p.key: p.value for p in onnx.load(rec_path, load_external_data=False).metadata_props}
    return meta["character"].splitlines()


def build(out: Path, *, images: int, seed: int, progress: bool = True) -> dict[str, Path]:
    """Fetch fp32, quantize int8, render the images, score both variants and write their cards into `out`."""
    card = load_task_card(CARD)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".build-") as tmp:
        work = Path(tmp)
        _build.log(progress, f"fetching {card.models['fp32'].source} and {card.models['fp32-rec'].source}")
        fp32 = extract_pinned({k: card.models[k] for k in ("fp32", "fp32-rec")}, WHEELS, work, str(CARD))
        files = {"fp32": (fp32["fp32"], fp32["fp32-rec"]), "int8": (work / "ocr-int8.onnx",
                                                                       work / "ocr-int8-rec.onnx")}
        _build.log(progress, "quantizing (int8: static QDQ detector, dynamic recogniser)")
        _quantize(files["fp32"], files["int8"], seed)
        pictures, texts = render(images, seed)
        np.savez(work / IMAGES_FILE, images=pictures, texts=np.array(texts))
        chars = characters(fp32["fp32-rec"])
        scores = {v: _accuracy(pair, chars, pictures, texts) for v, pair in files.items()}
        _build.log(progress, "character accuracy: " + ", ".join(f"{v} {s:.4f}" for v, s in scores.items()))
        params = {"images": images, "images_sha256": images_sha256(pictures, texts),
                  "calibration_images": CALIBRATION_IMAGES}
        cards = {v: _build.write_card(_card(card, pair, v, seed, params, scores), pair[0])
                 for v, pair in files.items()}
        (work / IMAGES_FILE).replace(out / IMAGES_FILE)
        paths = {**{v: pair[0] for v, pair in files.items()}, **{f"{v}-rec": pair[1] for v, pair in files.items()}}
        return _build.install(paths, cards, out)


class _Calibration(CalibrationDataReader):
    def __init__(self, images: np.ndarray, name: str) -> None:
        self._feeds = iter([{name: detect_input(images[i:i + 1])} for i in range(len(images))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _quantize(fp32: tuple[Path, Path], int8: tuple[Path, Path], seed: int) -> None:
    calibration, _ = render(CALIBRATION_IMAGES, seed + 1)
    name = _build.session(fp32[0]).get_inputs()[0].name
    with _build.quiet_quantizer():
        quantize_static(fp32[0], int8[0], _Calibration(calibration, name), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"])
        quantize_dynamic(fp32[1], int8[1], weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    for path in int8:
        _build.finish_quantized(path, producer="infersight tasks.ocr", version="1", ir_version=8)


def _accuracy(pair: tuple[Path, Path], chars: list[str], images: np.ndarray, texts: list[str]) -> float:
    from tasks.ocr import character_accuracy

    det, rec = _build.session(pair[0]), _build.session(pair[1])
    pipeline = OcrPipeline(chars, det.get_inputs()[0].name, rec.get_inputs()[0].name)
    models = {"main": lambda feeds: det.run(None, dict(feeds)), "rec": lambda feeds: rec.run(None, dict(feeds))}
    found = np.concatenate([pipeline(models, {"image": images[i:i + 8]})[0] for i in range(0, len(images), 8)])
    return character_accuracy(list(found), texts)[0]


def _card(task: Any, pair: tuple[Path, Path], variant: str, seed: int, params: dict[str, Any],
          scores: dict[str, float]):
    (det_in, det_out), (rec_in, rec_out) = _build.signature(pair[0]), _build.signature(pair[1])
    source = f"{task.models['fp32'].source} + {task.models['fp32-rec'].source}"
    rec_fields = _build.file_fields(pair[1])
    part = {"name": "rec", "file": pair[1].name, "sha256": rec_fields["sha256"],
            "size_bytes": rec_fields["size_bytes"], "operators": rec_fields["operators"], "inputs": rec_in, "outputs": rec_out}
    return _build.model_card(
        pair[0], variant, task="ocr", task_version=task.metadata.version, name=f"pp-ocrv4-{variant}",
        build_info={"script": "tasks/ocr/build_model.py", "seed": seed, "parameters": params,
                    "tool_versions": {"onnx": onnx.__version__, "onnxruntime": ort.__version__,
                                      "numpy": np.__version__}},
        reference_quality={"metric": "character_accuracy", "value": scores[variant], "samples": params["images"],
                           "fp32_reference": scores["fp32"]},
        inputs=det_in, outputs=det_out, parts=[part],
        license=task.models["fp32"].license,
        source=source if variant == "fp32" else f"quantized from {source}")


def main(argv: list[str] | None = None) -> int:
    return _build.run_main(argv, task="ocr", doc=__doc__, build=build,
                           count=("images", 16, "images of printed text to render"),
                           seed=(SEED, "seed of the images (words, fonts, ink, placement, noise)"))


if __name__ == "__main__":
    sys.exit(main())
