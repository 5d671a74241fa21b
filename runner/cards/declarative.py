"""The `declarative` section of a task card: a user's own ONNX model and data, run without Python.

The section says where the data is and which parts feed which model input, where the references
(the right answers) are, which model output is scored and how, and whether an int8 variant is wanted.
The model file itself is pinned in the card's `models` section (variant -> file, sha256); the quality
metric and its target are the card's `metrics.quality`, a scikit-learn metric named in
runner/declarative/metrics.py. Paths are relative to the card's folder.

Format version history:
  1 (2026-12): data (file, sha256, inputs, images), references (key, column, file, subfolders), output,
               metric_options, int8 (calibration_samples, format, per_channel).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runner.cards._base import StrictModel

__all__ = ["DeclarativeSpec", "DataSpec", "ImageSpec", "ReferenceSpec", "Int8Spec"]

_SHA256 = r"^[0-9a-f]{64}$"


class ImageSpec(StrictModel):
    """How a folder of images becomes one model input (resized to the input's height and width)."""

    mode: Literal["RGB", "L"] = Field("RGB", description="Colour mode the images are converted to (L: grey).")
    scale: float = Field(1 / 255, gt=0, description="Pixel values (0..255) are multiplied by this.")
    mean: list[float] = Field(default_factory=list, description="Subtracted per channel after scaling (empty: none).")
    std: list[float] = Field(default_factory=list, description="Divided per channel after the mean (empty: none).")


class DataSpec(StrictModel):
    """The samples: one file (.npz, .npy, .csv, .parquet) or a folder of images."""

    file: str = Field(min_length=1, description="Data file or image folder, relative to the card's folder.")
    sha256: str | None = Field(default=None, pattern=_SHA256,
                               description="sha256 of the data file; a file with other bytes is refused.")
    inputs: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Model input -> where its values are: an array key of an .npz, a column or a list of "
                    "columns of a table (stacked in order on the last axis). Empty: each input by its own name "
                    "(an .npy, an image folder or a table feed a single-input model whole).")
    images: ImageSpec | None = Field(default=None, description="Preprocessing of an image folder.")


class ReferenceSpec(StrictModel):
    """Where the reference (right) answers are: give exactly one way."""

    key: str | None = Field(default=None, description="Array key in the .npz data file.")
    column: str | None = Field(default=None, description="Column of the table (or of `file` when it is a table).")
    file: str | None = Field(default=None, description="A separate .npy, .npz (one array), .csv, .parquet or .txt "
                                                         "file of references, one per sample, in data order.")
    subfolders: bool = Field(default=False, description="Image folders only: each image's class is the name of its "
                                                        "subfolder (classes numbered in sorted order).")

    @model_validator(mode="after")
    def _one_way(self) -> ReferenceSpec:
        ways = [name for name in ("key", "file", "subfolders") if getattr(self, name)]
        if self.column and not self.file:
            ways.append("column")
        if len(ways) != 1:
            raise ValueError("give exactly one of key, column, file (with an optional column) or subfolders")
        return self


class Int8Spec(StrictModel):
    """An int8 variant made with onnxruntime's static quantizer, calibrated on samples of the data."""

    calibration_samples: int = Field(128, gt=0, description="Samples (the first ones) used for calibration.")
    format: Literal["QDQ", "QOperator"] = Field("QDQ", description="onnxruntime's quantization format.")
    per_channel: bool = Field(False, description="Quantize weights per channel.")


class DeclarativeSpec(StrictModel):
    """A task made of a card alone: model file(s) in `models`, data and references here."""

    data: DataSpec
    references: ReferenceSpec
    output: str | None = Field(default=None, description="Model output that is scored (default: the first).")
    metric_options: dict[str, int | float | str] = Field(
        default_factory=dict, description="Options of the quality metric (top_k_accuracy: k; f1: average).")
    int8: Int8Spec | None = Field(default=None, description="Make (and measure) an int8 variant; absent: fp32 only.")
