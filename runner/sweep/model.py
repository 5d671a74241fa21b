"""The sweep file: a matrix of runs (tasks x model variants x backends x settings x CPUs x scenarios x repeats).

A YAML file validated like a task card (strict: an unknown field is an error naming file,
line and field path). Settings of a backend or a scenario are written either as one mapping
whose list values are dimensions (their product is taken), or as a list of mappings, each one
combination. A setting whose own type is a list (onnxruntime's `providers`) is one value when
written as a flat list; a list of lists makes it a dimension. Settings are checked against the
backend's or scenario's own Settings model, so the settings of scenarios added later
(`target_qps`, `find_peak`, ...) work without changes here.

Format version history:
  1 (2027-01): name, description, tasks, model_variants, backends, scenarios, cpus, repeats,
               quick, time_limit_s, label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from runner.cards._base import StrictModel, load_yaml_with_lines, validate_file

__all__ = ["SweepFile", "PluginAxis", "load_sweep", "UNPINNED"]

UNPINNED = "all"

SettingsSpec = dict[str, Any] | list[dict[str, Any]]


class PluginAxis(StrictModel):
    """One backend or scenario of the matrix with its settings (a mapping of dimensions, or a list of combinations)."""

    name: str = Field(min_length=1, description="Plugin name, as `infersight plugins` lists it.")
    settings: SettingsSpec = Field(default_factory=dict, description="Settings: a mapping whose list values are "
                                   "dimensions, or a list of mappings, each one combination.")

    @field_validator("name", mode="before")
    @classmethod
    def _yaml_null(cls, value: Any) -> Any:
        return "null" if value is None else value  # `name: null` (the null backend) reads as YAML's null

    @field_validator("settings")
    @classmethod
    def _not_empty(cls, value: SettingsSpec) -> SettingsSpec:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list of combinations leaves no cells; omit `settings` for the defaults")
        return value


class SweepFile(StrictModel):
    """A sweep: what to measure, on what, how often."""

    sweep_version: Literal[1] = Field(1, description="Format version of the sweep file.")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=200,
                      description="Name of the sweep; running the file again resumes the sweep of this name.")
    description: str = Field("", description="Free text.")
    tasks: list[str] = Field(min_length=1, description="Task plugins to measure.")
    model_variants: list[str] = Field(default_factory=lambda: ["fp32"], min_length=1,
                                      description="Model variants of each task (fp32, int8, ...).")
    backends: list[PluginAxis] = Field(min_length=1, description="Backend plugins, each with its settings.")
    scenarios: list[PluginAxis] = Field(min_length=1, description="Scenario plugins, each with its settings.")
    cpus: list[int | str] = Field(default_factory=lambda: [UNPINNED], min_length=1,
                                  description="CPU sets to pin each run to (0, '0-1', '0,2'); 'all': not pinned.")
    repeats: int = Field(1, ge=1, le=1000,
                         description="Runs of every combination (interleaved: one round after another).")
    quick: bool = Field(False, description="Short, non-compliant runs (1 s minimums), as `infersight run --quick`.")
    time_limit_s: float = Field(900.0, gt=0, le=86_400,
                                description="Wall-clock limit of one cell; past it the cell is stopped and fails.")
    label: str | None = Field(None, description="Label stored with every run of the sweep (default: the sweep's name).")


def load_sweep(path: Path) -> tuple[SweepFile, dict[tuple, int]]:
    """Read and validate a sweep file; CardError names file, line and field. Returns the sweep and its key lines."""
    sweep = validate_file(SweepFile, Path(path))
    _, lines = load_yaml_with_lines(Path(path))
    return sweep, lines
