"""Pick a result's headline figure the way MLCommons' results table does, and cross-check it.

The figure is the detail log's official field for the round, benchmark and scenario
(benchmarks.headline_field); where the detail log is missing or lacks the field, the summary's
printing of the same figure, wherever in the summary it stands. When both hold it they must
agree to within their printing precision (the summary prints servers with 2 decimals, the
detail log and offline summaries with 6 significant digits), else the result is skipped:
one of them is damaged and we cannot tell which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.importers.mlperf._numbers import agree, as_number, half_unit
from runner.importers.mlperf.benchmarks import HEADLINE_FIELDS, Benchmark, headline_field
from runner.importers.mlperf.detail import DetailLog
from runner.importers.mlperf.report import SkipResult

__all__ = ["Headline", "select_headline", "METRICS"]

# units kind -> (our metric name, units as MLCommons' table writes them)
METRICS = {"samples": ("samples_per_second", "Samples/s"), "queries": ("queries_per_second", "Queries/s"),
           "tokens": ("tokens_per_second", "Tokens/s")}
_LATENCY = {"single_stream": ("latency_p90_ms", "90"), "multi_stream": ("latency_p99_ms", "99")}


@dataclass(frozen=True)
class Headline:
    """A result's headline: our metric name, value, units, and where it was read."""

    metric: str
    value: float
    units: str
    field: str
    source: str  # "mlperf_log_detail.txt" or "mlperf_log_summary.txt"


def select_headline(benchmark: Benchmark, scenario: str, round_name: str, summary: dict[str, Any],
                    detail: DetailLog | None, where: str) -> Headline:
    """The headline of one result; SkipResult (naming `where`) when it is missing or contradictory."""
    field = headline_field(benchmark, scenario, round_name)
    label, kind = HEADLINE_FIELDS[field]
    from_detail = as_number(detail.get(field)) if detail is not None else None
    from_summary, slack = _from_summary(summary, label, kind, scenario)
    if from_detail is None and from_summary is None:
        raise SkipResult(where, _missing(field, label, kind))
    if from_detail is not None and from_summary is not None and not _consistent(from_detail, from_summary, slack, kind):
        raise SkipResult(where, f"the summary and the detail log disagree on the headline {field}: "
                                f"{from_summary} vs {from_detail}; not imported")
    value, source = (from_detail, "mlperf_log_detail.txt") if from_detail is not None else \
        (from_summary, "mlperf_log_summary.txt")
    if value < 0:
        raise SkipResult(where, f"headline {field} is negative ({value})")
    return _headline(kind, scenario, value, field, source)


def _from_summary(summary: dict[str, Any], label: str, kind: str, scenario: str) -> tuple[Any, float]:
    """The summary's printing of the figure and half a unit of its last printed digit."""
    if kind == "latency":
        percentile = _LATENCY.get(scenario, ("", label))[1]
        value = summary.get("early_stopping", {}).get("latency", {}).get(percentile)
        return value, 0.0
    value = summary.get("values", {}).get(label)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, 0.0
    return value, half_unit(summary.get("texts", {}).get(label, str(value)))


def _consistent(detail: float, summary: float, slack: float, kind: str) -> bool:
    if kind == "latency":
        return detail == summary
    return agree(float(detail), float(summary), slack)


def _missing(field: str, label: str, kind: str) -> str:
    if kind == "latency":
        return (f"no early-stopping {label}th percentile estimate in the summary and no {field} in the "
                f"detail log (too few queries for early stopping?)")
    return f"no '{label}' line in the summary and no {field} in the detail log"


def _headline(kind: str, scenario: str, value: float, field: str, source: str) -> Headline:
    if kind == "latency":
        metric = _LATENCY.get(scenario, ("latency_p90_ms",))[0]
        return Headline(metric, value / 1e6, "ms", field, source)
    metric, units = METRICS[kind]
    return Headline(metric, float(value), units, field, source)
