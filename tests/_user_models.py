"""Small real ONNX models and data files a user might bring (made with onnx.helper, no training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG_SEED = 20261204


def _save(nodes, inputs, outputs, weights, path: Path) -> Path:
    initializers = [numpy_helper.from_array(v, k) for k, v in weights.items()]
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


def linear_classifier(path: Path, features: int = 4, classes: int = 3, seed: int = RNG_SEED) -> tuple[Path, np.ndarray]:
    """logits = x @ W + b with a dynamic batch dimension; returns (path, W)."""
    w = np.random.default_rng(seed).normal(size=(features, classes)).astype(np.float32)
    b = np.zeros(classes, np.float32)
    _save([helper.make_node("Gemm", ["x", "W", "b"], ["logits"])],
          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", features])],
          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])], {"W": w, "b": b}, path)
    return path, w


def classification_data(w: np.ndarray, count: int = 300, wrong: int = 12, seed: int = RNG_SEED
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels the linear classifier gets right except for `wrong` of them."""
    x = np.random.default_rng(seed + 1).normal(size=(count, w.shape[0])).astype(np.float32)
    y = np.argmax(x @ w, axis=1).astype(np.int64)
    y[:wrong] = (y[:wrong] + 1) % w.shape[1]
    return x, y


def two_input_regressor(path: Path) -> Path:
    """y = sum(a * [1, 2]) + 3 * b: inputs a float32 [batch, 2] and b float32 [batch, 1], output y [batch, 1]."""
    wa = np.array([[1.0], [2.0]], np.float32)
    wb = np.array([[3.0]], np.float32)
    return _save([helper.make_node("MatMul", ["a", "wa"], ["pa"]), helper.make_node("MatMul", ["b", "wb"], ["pb"]),
                  helper.make_node("Add", ["pa", "pb"], ["y"])],
                 [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 2]),
                  helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 1])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])], {"wa": wa, "wb": wb}, path)


def token_model(path: Path) -> Path:
    """An int64 input `ids` [batch, 3] summed to float scores [batch, 1] (for dtype checks)."""
    return _save([helper.make_node("Cast", ["ids"], ["f"], to=TensorProto.FLOAT),
                  helper.make_node("ReduceSum", ["f", "axes"], ["s"], keepdims=1)],
                 [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 3])],
                 [helper.make_tensor_value_info("s", TensorProto.FLOAT, ["batch", 1])],
                 {"axes": np.array([1], np.int64)}, path)


def colour_classifier(path: Path) -> Path:
    """Images [batch, 3, 4, 4] -> mean colour per channel -> logits of (red, green, blue)."""
    return _save([helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
                  helper.make_node("Flatten", ["pooled"], ["logits"])],
                 [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 4, 4])],
                 [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])], {}, path)


REGRESSOR_CARD = """\
card_version: 1
metadata: {{name: reg, version: 1.0.0, description: A two-input regressor., category: other}}
data:
  datasets: [{{name: samples, source: test, samples: 200}}]
  sampling: {{performance_sample_count: 200}}
metrics:
  quality: {{metric: mse, target: {{absolute: 0.02}}, higher_is_better: false}}
  performance: [samples_per_second]
scenarios: {{offline: {{}}, single_stream: {{}}}}
models:
  fp32: {{file: reg-fp32.onnx, sha256: {sha}}}
declarative:
  data:
    file: samples.csv
    inputs: {{a: [a0, a1], b: b}}
  references: {{column: y}}
"""
