"""Settings of the onnxruntime backend."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from runner.backends.base import BackendSettings
from runner.cpus import usable_cores

__all__ = ["OnnxRuntimeSettings", "PROVIDER_ALIASES", "default_threads"]

PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                    "tensorrt": "TensorrtExecutionProvider", "openvino": "OpenVINOExecutionProvider",
                    "dnnl": "DnnlExecutionProvider", "rocm": "ROCMExecutionProvider"}


def default_threads() -> int:
    """The intra-op default, resolved so the card records it: min(physical cores, CPUs the process is pinned to)."""
    return usable_cores()


class OnnxRuntimeSettings(BackendSettings):
    """How onnxruntime runs the model; --threads sets intra_op_threads, --provider providers."""

    cli_aliases: ClassVar[dict[str, str]] = {**BackendSettings.cli_aliases, "threads": "intra_op_threads",
                                             "provider": "providers"}
    intra_op_threads: int | None = Field(None, ge=1, le=1024,
                                         description="Threads inside one operator "
                                                     "(default: physical cores, at most the pinned CPUs).")
    inter_op_threads: int = Field(1, ge=1, le=1024, description="Threads across operators (parallel mode).")
    graph_optimization_level: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="onnxruntime graph optimisation level.")
    execution_mode: Literal["sequential", "parallel"] = Field("sequential", description="Operator scheduling.")
    providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"], min_length=1,
                                 description="Execution providers in priority order (cpu, cuda, tensorrt or full names).")

    @field_validator("providers")
    @classmethod
    def _full_names(cls, value: list[str]) -> list[str]:
        return [PROVIDER_ALIASES.get(p.lower(), p) for p in value]

    def resolved_threads(self) -> int:
        return self.intra_op_threads or default_threads()
