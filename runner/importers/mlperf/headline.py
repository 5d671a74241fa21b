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

__all__ = ["Headline", "select_headline", "inferred_headline", "METRICS"]

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
    inferred_from: str | None = None  # the logged scenario of a result the checker infers (else None)


def select_headline(benchmark: Benchmark, scenario: str, summary: dict[str, Any],
                    detail: DetailLog | None, where: str) -> Headline:
    """The headline of one result; SkipResult (naming `where`) when it is missing or contradictory."""
    field = headline_field(benchmark, scenario)
    if field is None:
        raise SkipResult(where, f"{benchmark.round} has no headline field for {benchmark.name} in {scenario} "
                                f"(scenarios of its rules table: {', '.join(benchmark.headline)})")
    label, kind = HEADLINE_FIELDS[field]
    _refuse_unreadable(summary, label, where)
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
    if kind == "percentile":
        return summary.get("percentiles_ns", {}).get("latency", {}).get(label), 0.0
    value = summary.get("values", {}).get(label)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, 0.0
    return value, half_unit(summary.get("texts", {}).get(label, str(value)))


def _consistent(detail: float, summary: float, slack: float, kind: str) -> bool:
    if kind in ("latency", "percentile"):
        return detail == summary
    return agree(float(detail), float(summary), slack)


def _missing(field: str, label: str, kind: str) -> str:
    if kind == "percentile":
        return f"no '{label} percentile latency (ns)' line in the summary and no {field} in the detail log"
    if kind == "latency":
        return (f"no early-stopping {label}th percentile estimate in the summary and no {field} in the "
                f"detail log (too few queries for early stopping?)")
    return f"no '{label}' line in the summary and no {field} in the detail log"


def _headline(kind: str, scenario: str, value: float, field: str, source: str) -> Headline:
    if kind in ("latency", "percentile"):
        metric = _LATENCY.get(scenario, ("latency_p90_ms",))[0]
        return Headline(metric, value / 1e6, "ms", field, source)
    metric, units = METRICS[kind]
    return Headline(metric, float(value), units, field, source)


def _refuse_unreadable(summary: dict[str, Any], label: str, where: str) -> None:
    """SkipResult naming the line when the summary prints the headline with a value that is no number."""
    for line, key, raw in summary.get("unreadable", []):
        if key == label:
            raise SkipResult(where, f"line {line}: the headline {key!r} reads {raw!r}, not a finite number; "
                                    f"not imported")


def inferred_headline(scenario: str, logged: str, summary: dict[str, Any], detail: DetailLog | None,
                      where: str) -> Headline:
    """The headline MLCommons' checker infers for a `scenario` folder holding a `logged` run.

    As its get_inferred_result: MultiStream from SingleStream is 8 x the early-stopping 99th
    percentile estimate (ms); Offline from SingleStream the QPS without LoadGen overhead; Offline from
    MultiStream samples per query x 1000 / mean query latency (ms).
    """
    def figure(key: str, label: str) -> float | None:
        value = as_number(detail.get(key)) if detail is not None else None
        return value if value is not None else as_number(summary.get("values", {}).get(label))

    if (scenario, logged) == ("multi_stream", "single_stream"):
        estimate = figure("early_stopping_latency_ms", "")
        if estimate is None:
            estimate = summary.get("early_stopping", {}).get("latency", {}).get("99")
        if not estimate:
            raise SkipResult(where, "a MultiStream result inferred from SingleStream needs the early-stopping "
                                    "99th percentile estimate; there is none")
        return Headline("latency_p99_ms", estimate * 8 / 1e6, "ms", "early_stopping_latency_ms x 8",
                        _source(detail), logged)
    if (scenario, logged) == ("offline", "single_stream"):
        qps = figure("result_qps_without_loadgen_overhead", "qps w/o loadgen overhead")
        if not qps:
            raise SkipResult(where, "an Offline result inferred from SingleStream needs "
                                    "'QPS w/o loadgen overhead'")
        return Headline("samples_per_second", float(qps), "Samples/s", "result_qps_without_loadgen_overhead",
                        _source(detail), logged)
    mean = figure("result_mean_query_latency_ns", "mean latency (ns)")
    per_query = figure("effective_samples_per_query", "samples_per_query")
    if not mean or not per_query:
        raise SkipResult(where, "an Offline result inferred from MultiStream needs the mean query latency and "
                                "samples per query")
    return Headline("samples_per_second", per_query * 1000 / (mean / 1e6), "Samples/s",
                    "samples_per_query x 1000 / mean query latency (ms)", _source(detail), logged)


def _source(detail: DetailLog | None) -> str:
    return "mlperf_log_detail.txt" if detail is not None else "mlperf_log_summary.txt"
