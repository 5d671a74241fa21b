"""The model card: one model file of a task, how it was built, and what it should score.

Written by the task's build script beside the model file (<file>.card.json).
Format version history:
  1 (2026-11): file, format, sha256, precision, opset, operators, build, signature, reference quality.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from runner.cards._base import StrictModel

__all__ = ["ModelCard", "TensorSpec", "BuildInfo", "ReferenceQuality"]


class TensorSpec(StrictModel):
    name: str
    dtype: str = Field(description="numpy dtype name, e.g. float32.")
    shape: list[int | str] = Field(description="Dimensions; a string names a dynamic dimension (e.g. 'batch').")


class BuildInfo(StrictModel):
    script: str = Field(description="Script that built the file, relative to the repository root.")
    seed: int = Field(description="Seed of every random choice in the build.")
    parameters: dict[str, int | float | str | bool] = Field(default_factory=dict,
                                                            description="Build parameters (epochs, learning rate, ...).")
    tool_versions: dict[str, str] = Field(default_factory=dict, description="Versions of numpy, onnx, onnxruntime, ...")


class ReferenceQuality(StrictModel):
    metric: str
    value: float = Field(description="Quality of this file on the held-out split, measured at build time.")
    samples: int = Field(gt=0)
    fp32_reference: float = Field(description="Quality of the fp32 model of the same task (the target's base).")


class ModelCard(StrictModel):
    card_version: Literal[1] = 1
    task: str
    task_version: str
    name: str
    variant: str = Field(description="Variant name used on the command line (fp32, int8, ...).")
    file: str = Field(description="Model file name, relative to the card's folder.")
    format: Literal["onnx"] = "onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(gt=0)
    precision: Literal["fp32", "fp16", "int8"]
    opset: int = Field(gt=0)
    operators: list[str] = Field(description="Operator types in the graph (all from the standard ai.onnx domain).")
    build: BuildInfo
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)
    reference_quality: ReferenceQuality
