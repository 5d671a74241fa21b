"""The int8 variant of a declarative task: onnxruntime's static quantizer, calibrated on samples of the data."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from runner.cards.declarative import Int8Spec
from runner.errors import ModelFileError

__all__ = ["quantize_int8", "quiet_quantizer"]


def quantize_int8(fp32: Path, out: Path, spec: Int8Spec, inputs: dict[str, np.ndarray]) -> None:
    """Write the int8 model of `fp32` to `out` (atomically), calibrated on the first samples of `inputs`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    count = min(spec.calibration_samples, len(next(iter(inputs.values()))))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._rows = iter(range(count))

        def get_next(self) -> dict[str, np.ndarray] | None:
            i = next(self._rows, None)
            return None if i is None else {name: a[i:i + 1] for name, a in inputs.items()}

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp, quiet_quantizer():
        prepared = Path(tmp) / "prepared.onnx"
        target = Path(tmp) / out.name
        try:
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(target), Reader(),
                            quant_format=QuantFormat.QDQ if spec.format == "QDQ" else QuantFormat.QOperator,
                            per_channel=spec.per_channel, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8)
        except Exception as exc:  # noqa: BLE001 - the quantizer raises many types for models it cannot take
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise ModelFileError(f"{fp32}: onnxruntime's quantizer cannot make an int8 variant: "
                                 f"{type(exc).__name__}: {first}") from None
        os.replace(target, out)


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[None]:
    """Silence the quantizer's advice (log records of WARNING and below) for the block; task builds use it too."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
