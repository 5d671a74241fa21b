"""The rules of each MLPerf Inference round, as data: rules/<round>.yaml, read through one guarded loader.

One table per round (rules/v4.0.yaml, v4.1.yaml, v5.0.yaml, v5.1.yaml), each copied from MLCommons'
submission checker for that round (mlcommons/inference, tools/submission/...; each file cites the
dicts it comes from), plus rules/benchmarks.yaml with what each benchmark is (the same in every round).
A round table holds:

- `round`, `published` (the date MLCommons published the round's results: imported results are
  dated by it), `checker` (where the rules were copied from);
- `min_duration_ms`: the shortest performance run the checker accepts;
- `compliance_divisions`: the divisions whose results must pass the compliance tests;
- `aliases`: model folder names the checker maps to a benchmark (its `model_mapping`);
- `headline`: scenario -> the detail-log field MLCommons' table takes as the result (RESULT_FIELD_NEW);
- `benchmarks`: per benchmark `checker` (its names there), `classes` (accuracy class suffix ->
  fraction of the reference quality; "" for none, null for absolute bounds only), `scenarios`,
  `headline` (per-benchmark overrides, RESULT_FIELD_BENCHMARK_OVERWRITE), `quality` (metric ->
  reference value), `quality_metric` (the headline quality metric; default the first of `quality`),
  `bounds` (metric -> [low, high or null], absolute), `compliance` (required TEST folders),
  `server_latency_ms`, `token_latency_ms` (scenario -> ttft/tpot bounds, ms), `performance_sample_count`
  and `min_queries` (scenario -> count).

To add a round: copy the newest table to rules/<round>.yaml, change what the checker's MODEL_CONFIG
for the new round changes, and cite it; nothing else in infersight names a round. Errors in a table
raise RulesError with file:line and field.
"""

from __future__ import annotations

import functools
import re
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runner.cards._base import load_yaml_with_lines
from runner.errors import CardError, InfersightError

__all__ = ["RoundRules", "BenchmarkRules", "BenchmarkFacts", "RulesError", "rules_for", "known_rounds",
           "catalogue", "RULES_DIR", "load_rules_file"]

RULES_DIR = Path(__file__).with_name("rules")
Scenario = Literal["offline", "server", "interactive", "single_stream", "multi_stream"]
HeadlineField = Literal[
    "result_samples_per_second", "result_scheduled_samples_per_sec", "result_completed_samples_per_sec",
    "result_tokens_per_second", "result_completed_tokens_per_second", "result_inferred_tokens_per_second",
    "result_inferred_completed_tokens_per_second", "early_stopping_latency_ss", "early_stopping_latency_ms",
    "result_90.00_percentile_latency_ns"]


class RulesError(InfersightError):
    """A rules table cannot be used (the message names file, line and field), or a round has none."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenLatency(_Strict):
    ttft: float = Field(gt=0)
    tpot: float = Field(gt=0)


class BenchmarkRules(_Strict):
    """One benchmark's rules in one round (see the module doc)."""

    checker: tuple[str, ...] = Field(min_length=1)
    classes: dict[str, float | None] = Field(min_length=1)
    scenarios: tuple[Scenario, ...] = Field(min_length=1)
    headline: dict[Scenario, HeadlineField] = {}
    quality: dict[str, float] = {}
    quality_metric: str | None = None
    bounds: dict[str, tuple[float, float | None]] = {}
    compliance: tuple[str, ...] = ()
    server_latency_ms: float | None = Field(default=None, gt=0)
    token_latency_ms: dict[Scenario, TokenLatency] = {}
    performance_sample_count: int = Field(gt=0)
    min_queries: dict[Scenario, int] = {}

    @field_validator("classes")
    @classmethod
    def _fractions(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        bad = [k for k, f in value.items() if k not in ("", "99", "99.9") or (f is not None and not 0 < f <= 1)]
        if bad:
            raise ValueError(f"classes must map '', '99' or '99.9' to a fraction in (0, 1] or null; bad: {bad}")
        return value

    @field_validator("compliance")
    @classmethod
    def _tests(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in value if not (t.startswith("TEST") and t[4:].isdigit())]
        if bad:
            raise ValueError(f"compliance tests are named TEST01, TEST04, ...; bad: {bad}")
        return value

    def metric(self) -> str:
        """The headline quality metric."""
        return self.quality_metric or next(iter(self.quality), next(iter(self.bounds), ""))


class RoundRules(_Strict):
    """The rules of one round (see the module doc)."""

    round: str = Field(pattern=r"^v\d+\.\d+$")
    published: date
    checker: str = Field(min_length=1)
    aliases: dict[str, str] = {}
    min_duration_ms: int = Field(gt=0)
    compliance_divisions: tuple[Literal["closed", "open", "network"], ...] = ("closed", "network")
    headline: dict[Scenario, HeadlineField]
    benchmarks: dict[str, BenchmarkRules] = Field(min_length=1)

    def headline_field(self, benchmark: str, scenario: str) -> str | None:
        """The detail-log field of a benchmark's result in a scenario (None: not a scenario of the round)."""
        rules = self.benchmarks[benchmark]
        return rules.headline.get(scenario) or self.headline.get(scenario)


class BenchmarkFacts(_Strict):
    """What a benchmark is (rules/benchmarks.yaml)."""

    category: Literal["image_classification", "object_detection", "text_generation", "language_model",
                      "speech", "recommendation", "other"]
    description: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    dataset_samples: int = Field(gt=0)
    tokens: Literal["", "tokens", "inferred"] = ""


def load_rules_file(path: Path, model: type[BaseModel]) -> BaseModel:
    """Read and validate one YAML table; RulesError naming file:line and field on any problem."""
    try:
        data, lines = load_yaml_with_lines(path)
    except CardError as exc:
        raise RulesError(str(exc)) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
        where = f"{path}:{line}" if line else str(path)
        field = ".".join(str(p) for p in loc) or "(top level)"
        raise RulesError(f"{where}: {field}: {error['msg']}") from None


def known_rounds() -> list[str]:
    """The rounds that have a rules table, oldest first."""
    names = [p.stem for p in RULES_DIR.glob("v*.yaml") if re.fullmatch(r"v\d+\.\d+", p.stem)]
    return sorted(names, key=lambda n: tuple(int(x) for x in n[1:].split(".")))


@functools.cache
def rules_for(round_name: str) -> RoundRules:
    """The rules table of a round ('v5.1'); RulesError naming the known rounds if it has none."""
    path = RULES_DIR / f"{round_name}.yaml"
    if not path.is_file():
        raise RulesError(f"MLPerf round {round_name} has no rules table (known: {', '.join(known_rounds())}); "
                         f"add {path} from MLCommons' submission checker for that round "
                         f"(see runner/importers/mlperf/rules.py)")
    rules = load_rules_file(path, RoundRules)
    if rules.round != round_name:
        raise RulesError(f"{path}: round: says {rules.round}, the file name says {round_name}")
    missing = sorted(set(rules.benchmarks) - set(catalogue()))
    if missing:
        raise RulesError(f"{path}: benchmarks: {missing} not described in {RULES_DIR / 'benchmarks.yaml'}")
    return rules


class _Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    benchmarks: dict[str, BenchmarkFacts]


@functools.cache
def catalogue() -> dict[str, BenchmarkFacts]:
    """Benchmark name -> what it is (rules/benchmarks.yaml)."""
    return load_rules_file(RULES_DIR / "benchmarks.yaml", _Catalogue).benchmarks
