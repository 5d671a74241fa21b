"""An ONNX file: is it ONNX at all, what are its inputs and outputs (names, dtypes, shapes), and does a
model card describe them as they are."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from runner.cards.model import TensorSpec
from runner.errors import ModelFileError

if TYPE_CHECKING:
    import onnx

__all__ = ["Signature", "card_mismatches", "read_signature"]


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


def read_signature(path: Path, check: bool = True) -> Signature:
    """The signature of the ONNX file at `path`; ModelFileError if it is missing or not an ONNX model
    (`check`: also run onnx's model checker, for a file that no build of ours wrote)."""
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    import onnx  # here, not at the top: onnx (and ml_dtypes) take half a second to import
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(f"{path}: not an ONNX model (onnx cannot parse it: {_first_line(exc)})") from None
    if not model.graph.node or not model.graph.output or model.ir_version == 0:
        raise ModelFileError(f"{path}: not an ONNX model (no graph, outputs or IR version in the file)")
    try:
        if check:
            onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelFileError(f"{path}: not a valid ONNX model: {_first_line(exc)}") from None
    signature = Signature(model)
    if not signature.inputs:
        raise ModelFileError(f"{path}: the ONNX model has no inputs to feed")
    return signature


def card_mismatches(side: str, card: list[TensorSpec],
                    model: list[TensorSpec]) -> list[tuple[tuple, str, str]]:
    """Where a card's tensors (`side`: "inputs" or "outputs") differ from the model's: (field path, what the
    card says, what the model has), every tensor by name; a dynamic dimension (a name) matches any other."""
    has = {t.name: t for t in model}
    out = []
    for i, spec in enumerate(card):
        real = has.get(spec.name)
        if real is None:
            out.append(((side, i, "name"), repr(spec.name), f"{side} {_names(model)}"))
            continue
        if spec.dtype != real.dtype:
            out.append(((side, i, "dtype"), spec.dtype, real.dtype))
        if not _same_shape(spec.shape, real.shape):
            out.append(((side, i, "shape"), str(spec.shape), str(real.shape)))
    named = {t.name for t in card}
    out += [((side,), f"nothing of {t.name!r}", f"{t.name} {t.dtype} {t.shape}")
            for t in model if t.name not in named]
    return out


def _same_shape(card: list[int | str], model: list[int | str]) -> bool:
    return len(card) == len(model) and all(
        (isinstance(a, str) and isinstance(b, str)) or a == b for a, b in zip(card, model))


def _names(specs: list[TensorSpec]) -> str:
    return ", ".join(repr(t.name) for t in specs) or "none"


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor = value.type.tensor_type
    dims = [d.dim_param or (d.dim_value if d.HasField("dim_value") else f"dim{i}")
            for i, d in enumerate(tensor.shape.dim)]
    try:
        from onnx import helper

        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
    except (KeyError, TypeError, ValueError):
        dtype = f"onnx-type-{tensor.elem_type}"
    return TensorSpec(name=value.name, dtype=dtype, shape=dims)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
