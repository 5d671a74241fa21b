"""What infersight knows about each MLPerf Inference benchmark in a round: task facts and headline rules.

Everything here is read from the round's rules table (rules.py, rules/<round>.yaml, copied from
MLCommons' submission checker): accuracy targets, performance sample counts, latency bounds,
compliance tests, headline fields, the folder names the checker accepts. A model folder names a
benchmark plus an accuracy class: "bert-99.9" is benchmark "bert" at 99.9% of the reference
quality; "resnet50" has no class (99% as the round says); "stable-diffusion-xl" has absolute bounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from runner.importers.mlperf.rules import catalogue, rules_for

__all__ = ["Benchmark", "SCENARIOS", "benchmark_of", "benchmark", "accuracy_fraction", "headline_field",
           "HEADLINE_FIELDS", "round_number"]

# Folder name (case-insensitive) -> our scenario name. Interactive (v5.x) is a Server run whose
# summary says "Scenario : Server".
SCENARIOS = {"offline": "offline", "server": "server", "singlestream": "single_stream",
             "multistream": "multi_stream", "interactive": "interactive"}


@dataclass(frozen=True)
class Benchmark:
    """Facts of one benchmark in one round, the same for every system (they make the imported task card)."""

    name: str
    round: str
    category: str
    description: str
    dataset: str
    dataset_samples: int
    performance_sample_count: int
    quality_metric: str
    quality_targets: tuple[tuple[str, float], ...]  # (metric, reference value); target = fraction x value
    absolute_targets: tuple[tuple[str, float, float | None], ...] = ()  # (metric, low, high or None)
    server_latency_ms: float | None = None
    tokens: str = ""  # "", "tokens" (logged) or "inferred" (samples x tokens per sample)
    compliance_tests: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ("offline", "server")
    headline: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    classes: dict[str, float | None] = field(default_factory=dict, hash=False, compare=False)
    token_latency_ms: dict[str, dict[str, float]] = field(default_factory=dict, hash=False, compare=False)


_CLASS = re.compile(r"^(?P<name>.+?)-(?P<cls>99\.9|99)$")


def benchmark(name: str, round_name: str) -> Benchmark:
    """The benchmark `name` (a rules-table key such as "llama2-70b") in a round; KeyError if it has none."""
    rules = rules_for(round_name)
    spec, facts = rules.benchmarks[name], catalogue()[name]
    return Benchmark(
        name=name, round=round_name, category=facts.category, description=facts.description,
        dataset=facts.dataset, dataset_samples=facts.dataset_samples,
        performance_sample_count=spec.performance_sample_count, quality_metric=spec.metric(),
        quality_targets=tuple(spec.quality.items()),
        absolute_targets=tuple((m, low, high) for m, (low, high) in spec.bounds.items()),
        server_latency_ms=spec.server_latency_ms, tokens=facts.tokens, compliance_tests=spec.compliance,
        scenarios=spec.scenarios,
        headline={s: rules.headline_field(name, s) for s in (*rules.headline, *spec.headline)},
        classes=dict(spec.classes), token_latency_ms={s: b.model_dump() for s, b in spec.token_latency_ms.items()})


def benchmark_of(model: str, round_name: str) -> tuple[Benchmark, str] | None:
    """(benchmark, accuracy class "99"/"99.9"/"") of a results model folder in a round, or None if unknown.

    The folder is matched as the round's checker does: its own name or an alias (model_mapping), then
    the name without its class suffix; the class must be one the benchmark has in that round.
    """
    rules = rules_for(round_name)
    name = model.strip().lower()
    name = rules.aliases.get(name, name)
    match = _CLASS.match(name)
    candidates = [(name, "")] + ([(match.group("name"), match.group("cls"))] if match else [])
    for base, cls in candidates:
        base = rules.aliases.get(base, base)
        if base in rules.benchmarks and cls in rules.benchmarks[base].classes:
            return benchmark(base, round_name), cls
    return None


def accuracy_fraction(bench: Benchmark, cls: str) -> float | None:
    """The fraction of the reference quality a model must reach (None: absolute bounds only)."""
    return bench.classes.get(cls)


def round_number(round_name: str) -> tuple[int, int]:
    """'v4.1' -> (4, 1); unknown spellings sort as the newest round."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)", round_name.strip().lower())
    return (int(match.group(1)), int(match.group(2))) if match else (99, 0)


# Detail-log field -> (summary label, units kind). Units kinds: "samples", "queries", "tokens".
HEADLINE_FIELDS = {
    "result_samples_per_second": ("samples per second", "samples"),
    "result_scheduled_samples_per_sec": ("scheduled samples per second", "queries"),
    "result_completed_samples_per_sec": ("completed samples per second", "queries"),
    "result_tokens_per_second": ("tokens per second", "tokens"),
    "result_completed_tokens_per_second": ("completed tokens per second", "tokens"),
    "result_inferred_tokens_per_second": ("tokens per second (inferred)", "tokens"),
    "result_inferred_completed_tokens_per_second": ("completed tokens per second (inferred)", "tokens"),
    "early_stopping_latency_ss": ("90", "latency"),
    "early_stopping_latency_ms": ("99", "latency"),
    "result_90.00_percentile_latency_ns": ("90", "percentile"),
}


def headline_field(bench: Benchmark, scenario: str) -> str | None:
    """The detail-log field holding the official headline of a result (our scenario name), per its round."""
    return bench.headline.get(scenario)
