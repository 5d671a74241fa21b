"""The onnxruntime backend: one InferenceSession with explicit threads, optimisation and providers."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort

from runner.backends._stream import greedy_stream, stream_request
from runner.backends.base import Backend
from runner.backends.onnxruntime.config import OnnxRuntimeSettings
from runner.cards import ModelCard
from runner.cards.system import nvidia_gpus
from runner.errors import ModelFileError, SettingsError

__all__ = ["OnnxRuntimeBackend"]

_GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
_LEVELS = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
           "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
           "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
           "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


class OnnxRuntimeBackend(Backend):
    """Runs ONNX models with onnxruntime on the CPU (or CUDA/TensorRT where installed)."""

    name: ClassVar[str] = "onnxruntime"
    runtime: ClassVar[str] = "onnxruntime"
    Settings: ClassVar[type[OnnxRuntimeSettings]] = OnnxRuntimeSettings

    @classmethod
    def runtime_version(cls) -> str:
        return ort.__version__

    def prepare(self, model: ModelCard, model_path: Path) -> None:
        self.check_available(self.settings)
        self.model = model
        try:
            self._session = ort.InferenceSession(str(model_path), self._session_options(),
                                                 providers=self.settings.providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ModelFileError(f"{model_path}: onnxruntime cannot load the model: {_first_line(exc)}") from None
        self._check_no_fallback()
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._run = self._session.run

    def run_batch(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self._run(self._outputs, inputs)

    def run_stream(self, inputs: Mapping[str, np.ndarray]) -> Iterator[list[np.ndarray]]:
        """Greedy generation as the model card's generation spec says: prefill on the first next(), then one
        session run per further token with the state outputs fed back. Bad requests raise BackendError at once."""
        spec, feeds, count = stream_request(self.name, self.model, inputs)
        names = [spec.logits_output, *(p.output for p in spec.state)]
        return greedy_stream(functools.partial(self._run, names), spec, feeds, count)

    def teardown(self) -> None:
        self._session = None
        self._run = None

    def device(self) -> str:
        first = self.execution_providers()[:1] or self.settings.providers[:1]
        return {"CUDAExecutionProvider": "cuda:0", "TensorrtExecutionProvider": "cuda:0",
                "ROCMExecutionProvider": "rocm:0"}.get(first[0], "cpu")

    def execution_providers(self) -> list[str]:
        session = getattr(self, "_session", None)
        return session.get_providers() if session is not None else list(self.settings.providers)

    def effective_settings(self) -> dict[str, Any]:
        # the thread count as resolved when the session was made (on the CPUs the backend was kept on)
        return {**self.settings.to_dict(), "intra_op_threads": getattr(self, "_threads", None)
                or self.settings.resolved_threads()}

    def _session_options(self) -> ort.SessionOptions:
        s, opts = self.settings, ort.SessionOptions()
        self._threads = opts.intra_op_num_threads = s.resolved_threads()
        opts.inter_op_num_threads = s.inter_op_threads
        opts.graph_optimization_level = _LEVELS[s.graph_optimization_level]
        opts.execution_mode = (ort.ExecutionMode.ORT_PARALLEL if s.execution_mode == "parallel"
                               else ort.ExecutionMode.ORT_SEQUENTIAL)
        opts.log_severity_level = 3
        return opts

    @classmethod
    def check_available(cls, settings: OnnxRuntimeSettings) -> None:
        """Every execution provider asked for must be available in this onnxruntime build."""
        available = ort.get_available_providers()
        missing = [p for p in settings.providers if p not in available]
        if missing:
            raise SettingsError(f"backend onnxruntime: execution provider(s) {', '.join(missing)} not available "
                                f"in onnxruntime {ort.__version__}; available: {', '.join(available)}")
        gpu = [p for p in settings.providers if p in _GPU_PROVIDERS]
        if gpu and not nvidia_gpus():
            raise SettingsError(f"backend onnxruntime: {', '.join(gpu)} needs an NVIDIA GPU and nvidia-smi finds "
                                f"none on this machine")

    def _check_no_fallback(self) -> None:
        """onnxruntime may quietly fall back to the CPU when a GPU provider cannot start: refuse that."""
        asked, used = self.settings.providers[0], self._session.get_providers()
        if asked not in used:
            raise SettingsError(f"backend onnxruntime: asked for {asked}, but the session runs on "
                                f"{', '.join(used)} (onnxruntime fell back; is the GPU usable?)")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
