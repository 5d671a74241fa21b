"""The model card: one model file of a task, how it was built, and what it should score.

Written by the task's build script beside the model file (<file>.card.json), or by an importer
for a model measured elsewhere (origin "imported": an MLPerf reference model such as resnet50 or
llama2-70b-99, whose file, build and signature are not published).
Format version history:
  1 (2026-11): file, format, sha256, precision, opset, operators, build, signature, reference quality.
  1 (2026-12): + origin, weight_data_types, accuracy_target_fraction, other_fields; the file,
               build, signature and reference quality may be absent for imported models; precision
               adds bf16, fp8, int4. Added fields are left out of the dict (and hash) at their defaults.
  1 (2026-12): + generation (how to stream a generative model: token input, logits output, state
               input -> output pairs, vocabulary size); left out of the dict (and hash) while absent.
  1 (2026-12): + parts (further model files of a model made of several, e.g. a text detector and its
               recogniser, run by the task's pipeline), license, source; left out while empty.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from runner.cards._base import StrictModel
from runner.cards._compat import omit_added_defaults

__all__ = ["ModelCard", "TensorSpec", "BuildInfo", "ReferenceQuality", "GenerationSpec", "StatePair", "ModelPart"]


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


class StatePair(StrictModel):
    input: str = Field(description="State input of the model; zeros (dynamic dimensions as 1) before the first step.")
    output: str = Field(description="Output holding the state after a step; fed back into `input` at the next step.")


class GenerationSpec(StrictModel):
    """How a backend streams a generative model: the whole context in one step (prefill), then one step
    per generated token, each fed the previous token and the state outputs of the step before."""

    token_input: str = Field(description="Input of token ids, int64 [batch, time].")
    logits_output: str = Field(description="Output of next-token logits [batch, time, vocab]; the last time step "
                                           "gives the next token (greedy: its argmax).")
    state: list[StatePair] = Field(default_factory=list,
                                   description="Recurrent state or KV-cache pairs carried from step to step.")
    vocab_size: int = Field(gt=0, description="Number of token ids (the logits' last dimension).")

    def check_against(self, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> list[str]:
        """Problems with the names against a model's signature (every input must be the tokens or a state)."""
        ins, outs = {t.name: t for t in inputs}, {t.name for t in outputs}
        state_in = [p.input for p in self.state]
        problems = [f"input {n!r} is not in the model's inputs" for n in [self.token_input, *state_in] if n not in ins]
        problems += [f"output {n!r} is not in the model's outputs"
                     for n in [self.logits_output, *(p.output for p in self.state)] if n not in outs]
        problems += [f"model input {n!r} is neither the token input nor a state input"
                     for n in ins if n != self.token_input and n not in state_in]
        if self.token_input in ins and ins[self.token_input].dtype != "int64":
            problems.append(f"token input {self.token_input!r} must be int64, not {ins[self.token_input].dtype}")
        return problems


class ModelPart(StrictModel):
    """A further file of a model made of several (a detector and a recogniser): the task's pipeline runs it
    beside the card's own file, on the same backend with the same settings."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Name the task's pipeline calls the part by.")
    file: str = Field(description="Model file name, relative to the card's folder.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(gt=0)
    operators: list[str] = Field(default_factory=list, description="Operator types in the graph.")
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)


_BUILT_NEEDS = ("file", "format", "sha256", "size_bytes", "precision", "opset", "operators", "build", "inputs",
                "outputs", "reference_quality")


class ModelCard(StrictModel):
    card_version: Literal[1] = 1
    task: str
    task_version: str
    name: str
    variant: str = Field(description="Variant name used on the command line (fp32, int8, ...).")
    origin: Literal["built", "imported"] = Field(
        default="built", description="built by a task here, or imported with a result measured elsewhere.")
    file: str | None = Field(default=None, description="Model file name, relative to the card's folder.")
    format: Literal["onnx"] | None = "onnx"
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    size_bytes: int | None = Field(default=None, gt=0)
    precision: Literal["fp32", "fp16", "bf16", "fp8", "int8", "int4"] | None = None
    opset: int | None = Field(default=None, gt=0)
    operators: list[str] = Field(default_factory=list,
                                 description="Operator types in the graph (all from the standard ai.onnx domain).")
    build: BuildInfo | None = None
    inputs: list[TensorSpec] = Field(default_factory=list)
    outputs: list[TensorSpec] = Field(default_factory=list)
    reference_quality: ReferenceQuality | None = None
    weight_data_types: str = Field(default="", description="Weight data types as the submitter wrote them (fp8, INT8, ...).")
    accuracy_target_fraction: float | None = Field(
        default=None, gt=0, le=1, description="Quality the model must reach, as a fraction of the reference (0.99, 0.999).")
    other_fields: dict[str, Any] = Field(default_factory=dict,
                                         description="Further facts of an imported model (MLPerf measurements JSON).")
    generation: GenerationSpec | None = Field(
        default=None, description="How to stream the model (generative models only; backends' run_stream reads it).")

    parts: list[ModelPart] = Field(
        default_factory=list, description="Further model files run by the task's pipeline (the card's own file "
                                          "is the part named 'main').")
    license: str = Field(default="", description="Licence of the model file(s), for a model made elsewhere.")
    source: str = Field(default="", description="Where a model made elsewhere comes from "
                                                "('pypi:<package>==<version>:<path in the wheel>').")

    _ADDED: ClassVar[tuple[str, ...]] = ("origin", "weight_data_types", "accuracy_target_fraction", "other_fields",
                                         "generation", "parts", "license", "source")

    @model_validator(mode="after")
    def _built_has_its_file(self) -> "ModelCard":
        if self.origin == "built":
            missing = [name for name in _BUILT_NEEDS if getattr(self, name) in (None, [])]
            if missing:
                raise ValueError(f"a built model card needs {', '.join(missing)}")
        names = [p.name for p in self.parts]
        if "main" in names or len(set(names)) != len(names):
            raise ValueError(f"parts: names must be unique and not 'main' (the card's own file), got {names}")
        if self.generation is not None and self.inputs:
            problems = self.generation.check_against(self.inputs, self.outputs)
            if problems:
                raise ValueError("generation: " + "; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict; fields added after format 1 are left out at their defaults."""
        return omit_added_defaults(self, super().to_dict(), self._ADDED)
