"""Build the model files of the `digits` task: a small CNN trained in numpy, exported to ONNX (fp32), and
quantized to int8 (QDQ) with onnxruntime's static quantizer. Each file gets a model card beside it.

    python -m tasks.digits.build_model --out tasks/digits/models [--epochs N] [--seed S] [--quiet]

The build is deterministic: the same seed on the same machine gives byte-identical files
(fixed RNG, fixed batch order, BLAS on one thread while training, no timestamps in the files).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from runner.cards.model import ModelCard
from tasks._build import finish_quantized, install, log, model_card, quiet_quantizer, run_main, session, write_card
from tasks.digits._numpy_cnn import Conv, Dense, Flatten, MaxPool, Relu, build_network, forward, train

__all__ = ["SPLIT_SEED", "load_split", "to_onnx", "quantize", "accuracy", "build", "main"]

SCRIPT = "tasks/digits/build_model.py"
PRODUCER = "infersight-digits-build"
TASK, TASK_VERSION, MODEL_NAME = "digits", "1.0.0", "digits-cnn"
SPLIT_SEED = 20261124
TEST_FRACTION = 0.2
OPSET, IR_VERSION = 17, 8
INPUT, OUTPUT = "image", "logits"
INPUT_SHAPE, OUTPUT_SHAPE = ["batch", 1, 8, 8], ["batch", 10]
DEFAULT_EPOCHS = 12
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
ARCHITECTURE = "conv64-conv256-pool-conv384-pool-fc256-fc10"  # 3x3 convs, 2x2 max-pools, ReLU
CALIBRATION_SAMPLES = 512
VARIANTS = ("fp32", "int8")


# --------------------------------------------------------------------------------------------- data

def load_split(seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits, scaled to [0, 1] float32 (N, 1, 8, 8), int64 labels, stratified split.

    The single source of the task's split: (x_train, y_train, x_test, y_test).
    """
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed,
                                                        stratify=y)
    return x_train, y_train, x_test, y_test


# ------------------------------------------------------------------------------------------- export

def to_onnx(layers: list) -> onnx.ModelProto:
    """Standard ai.onnx graph (Conv, Relu, MaxPool, Flatten, Gemm), opset 17, no timestamps."""
    nodes, inits, x = [], [], INPUT
    for i, layer in enumerate(layers, start=1):
        name = f"{type(layer).__name__.lower()}_{i}"
        y = OUTPUT if i == len(layers) else f"{name}_out"
        inputs = [x]
        for key, value in layer.params.items():
            inits.append(numpy_helper.from_array(value, f"{name}.{key}"))
            inputs.append(f"{name}.{key}")
        nodes.append(helper.make_node(_op_type(layer), inputs, [y], name=name, **_attributes(layer)))
        x = y
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, INPUT_SHAPE)],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, OUTPUT_SHAPE)],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
                              producer_version=TASK_VERSION, ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def _op_type(layer: Any) -> str:
    return {Conv: "Conv", Relu: "Relu", MaxPool: "MaxPool", Flatten: "Flatten", Dense: "Gemm"}[type(layer)]


def _attributes(layer: Any) -> dict[str, Any]:
    if isinstance(layer, Conv):
        p = layer.k // 2
        return {"kernel_shape": [layer.k, layer.k], "pads": [p, p, p, p], "strides": [1, 1]}
    if isinstance(layer, MaxPool):
        return {"kernel_shape": [2, 2], "strides": [2, 2]}
    if isinstance(layer, Flatten):
        return {"axis": 1}
    return {}


# ------------------------------------------------------------------------------------- quantization

class _Calibration(CalibrationDataReader):
    """Feeds a fixed set of images, in fixed batches, to the calibrator."""

    def __init__(self, images: np.ndarray, batch: int = 64) -> None:
        self._batches = iter([{INPUT: images[i:i + batch]} for i in range(0, len(images), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize(fp32_path: Path, int8_path: Path, calibration_images: np.ndarray) -> None:
    """Static QDQ int8: per-channel int8 weights, uint8 activations (x86 VNNI's u8s8), MinMax ranges."""
    with quiet_quantizer():  # the quantizer's "consider pre-processing" advice: not needed here
        quantize_static(fp32_path, int8_path, _Calibration(calibration_images), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
    finish_quantized(int8_path, producer=PRODUCER, version=TASK_VERSION, ir_version=IR_VERSION)


QUANT_PARAMETERS = {"quant_format": "QDQ", "per_channel": True, "activation_type": "QUInt8",
                    "weight_type": "QInt8", "calibration_method": "MinMax",
                    "calibration_samples": CALIBRATION_SAMPLES}


# --------------------------------------------------------------------------------------------- cards

def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    """Logits of an ONNX file in onnxruntime (CPU, one thread)."""
    return session(path).run([OUTPUT], {INPUT: x})[0]


def accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of an ONNX file in onnxruntime."""
    return float((run_onnx(path, x).argmax(axis=1) == y).mean())


def check_export(layers: list, path: Path, x: np.ndarray) -> None:
    """The exported graph must compute what the numpy network computes."""
    expected, got = forward(layers, x), run_onnx(path, x)
    tolerance = 1e-4 * max(1.0, float(np.abs(expected).max()))
    if not np.allclose(got, expected, rtol=1e-4, atol=tolerance):
        raise RuntimeError(f"ONNX export differs from the numpy network by {np.abs(got - expected).max():.3g}")


def make_card(path: Path, variant: str, *, build_info: dict[str, Any], quality: float, fp32_quality: float,
              samples: int) -> ModelCard:
    return model_card(path, variant, task=TASK, task_version=TASK_VERSION, name=MODEL_NAME, build_info=build_info,
                      reference_quality={"metric": "top1_accuracy", "value": quality, "samples": samples,
                                         "fp32_reference": fp32_quality},
                      inputs=[{"name": INPUT, "dtype": "float32", "shape": INPUT_SHAPE}],
                      outputs=[{"name": OUTPUT, "dtype": "float32", "shape": OUTPUT_SHAPE}])


def tool_versions() -> dict[str, str]:
    return {"numpy": np.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
            "scikit-learn": sklearn.__version__}


# --------------------------------------------------------------------------------------------- build

def build(out_dir: Path, *, epochs: int = DEFAULT_EPOCHS, seed: int = 20261124,
          progress: bool = True) -> dict[str, Path]:
    """Train, export, quantize, evaluate and write digits-<variant>.onnx and its card for every variant.

    `seed` drives initialisation and batch order; the data split is always load_split()'s.
    Files are written into a temporary folder inside out_dir and renamed into place at the end,
    models before cards, so an interrupted build never leaves a half-written file. Returns variant -> card.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = load_split()
    layers = build_network(np.random.default_rng(seed))
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        train(layers, x_train, y_train, np.random.default_rng(seed + 1), epochs=epochs, batch_size=BATCH_SIZE,
              lr=LEARNING_RATE, progress=progress)
    log(progress, f"trained in {time.perf_counter() - started:.1f}s")
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out_dir) as tmp:
        paths = {v: Path(tmp) / f"digits-{v}.onnx" for v in VARIANTS}
        onnx.save(to_onnx(layers), paths["fp32"])
        check_export(layers, paths["fp32"], x_test)
        quantize(paths["fp32"], paths["int8"], x_train[:CALIBRATION_SAMPLES])
        scores = {v: accuracy(p, x_test, y_test) for v, p in paths.items()}
        cards = {}
        for variant, path in paths.items():
            card = make_card(path, variant, build_info=_build_info(variant, seed, epochs), quality=scores[variant],
                             fp32_quality=scores["fp32"], samples=len(y_test))
            cards[variant] = write_card(card, path)
            log(progress, f"{variant}: top1_accuracy {scores[variant]:.4f} on {len(y_test)} test images, "
                           f"{card.size_bytes} bytes, sha256 {card.sha256[:16]}")
        return install(paths, cards, out_dir)


def _build_info(variant: str, seed: int, epochs: int) -> dict[str, Any]:
    parameters = {"epochs": epochs, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE,
                  "lr_schedule": "cosine", "optimizer": "adam", "test_fraction": TEST_FRACTION,
                  "split_seed": SPLIT_SEED, "architecture": ARCHITECTURE}
    if variant == "int8":
        parameters.update(QUANT_PARAMETERS)
    return {"script": SCRIPT, "seed": seed, "parameters": parameters, "tool_versions": tool_versions()}


def main(argv: list[str] | None = None) -> int:
    return run_main(argv, task="digits", doc=__doc__, build=build, count=("epochs", DEFAULT_EPOCHS, None),
                    seed=(20261124, "seed of initialisation and batch order"))


if __name__ == "__main__":
    sys.exit(main())
