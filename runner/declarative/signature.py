"""A user's ONNX file: is it ONNX at all, and what are its inputs and outputs (names, dtypes, shapes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper

from runner.cards.model import TensorSpec
from runner.errors import ModelFileError

__all__ = ["Signature", "read_signature"]


class Signature:
    """The graph inputs (initializers left out) and outputs of an ONNX model, with its opset and operators."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        weights = {init.name for init in graph.initializer}
        self.inputs = [_spec(v) for v in graph.input if v.name not in weights]
        self.outputs = [_spec(v) for v in graph.output]
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.operators = sorted({node.op_type for node in graph.node})

    def input_text(self) -> str:
        """The inputs as `name dtype [dims]`, for messages."""
        return ", ".join(f"{t.name} {t.dtype} {t.shape}" for t in self.inputs)


def read_signature(path: Path) -> Signature:
    """The signature of the ONNX file at `path`; ModelFileError if it is missing or not an ONNX model."""
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(f"{path}: not an ONNX model (onnx cannot parse it: {_first_line(exc)})") from None
    if not model.graph.node or not model.graph.output or model.ir_version == 0:
        raise ModelFileError(f"{path}: not an ONNX model (no graph, outputs or IR version in the file)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelFileError(f"{path}: not a valid ONNX model: {_first_line(exc)}") from None
    signature = Signature(model)
    if not signature.inputs:
        raise ModelFileError(f"{path}: the ONNX model has no inputs to feed")
    return signature


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor = value.type.tensor_type
    dims = [d.dim_param or (d.dim_value if d.HasField("dim_value") else f"dim{i}")
            for i, d in enumerate(tensor.shape.dim)]
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
    except (KeyError, TypeError, ValueError):
        dtype = f"onnx-type-{tensor.elem_type}"
    return TensorSpec(name=value.name, dtype=dtype, shape=dims)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
