"""Settings of the OpenVINO backend (names follow OpenVINO's properties, in lower case)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from runner.backends.base import BackendSettings

__all__ = ["OpenVinoSettings"]


class OpenVinoSettings(BackendSettings):
    """How OpenVINO compiles and runs the model; None leaves the choice to OpenVINO (the card records it).
    --threads sets inference_num_threads."""

    cli_aliases: ClassVar[dict[str, str]] = {**BackendSettings.cli_aliases, "threads": "inference_num_threads"}

    device: str = Field("CPU", pattern=r"^[A-Z]+(\.\d+)?$",
                        description="OpenVINO device (CPU; GPU or NPU where OpenVINO finds one).")
    performance_hint: Literal["latency", "throughput", "none"] = Field(
        "latency", description="PERFORMANCE_HINT: latency (one stream), throughput (several streams, "
                               "each batch split across them), none (OpenVINO's default).")
    num_streams: int | None = Field(None, ge=1, le=1024,
                                    description="NUM_STREAMS: parallel inference streams (default: from the hint).")
    inference_num_threads: int | None = Field(
        None, ge=1, le=1024, description="INFERENCE_NUM_THREADS (default: OpenVINO's, at most the pinned CPUs).")
    inference_precision_hint: Literal["f32", "bf16", "auto"] = Field(
        "f32", description="INFERENCE_PRECISION_HINT: f32 keeps the model's precision; bf16 where the CPU "
                           "has it; auto lets OpenVINO choose (bf16 on CPUs with AVX-512 BF16 or AMX).")
