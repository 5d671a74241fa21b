"""The onnxruntime backend plugin."""

from runner.backends.onnxruntime.backend import OnnxRuntimeBackend
from runner.backends.onnxruntime.config import OnnxRuntimeSettings

__all__ = ["OnnxRuntimeBackend", "OnnxRuntimeSettings"]
