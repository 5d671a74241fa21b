"""Request models of the REST API: strict (unknown fields refused), described, with examples (OpenAPI)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from engine.constraints import METRICS, OPTION_BOUNDS
from runner.bundles import PAGE_LIMIT

__all__ = [
    "AnalyseQuery",
    "Bounds",
    "BundleQuery",
    "CompareRequest",
    "ExportQuery",
    "RecommendRequest",
    "TrendQuery",
    "TrendReportQuery",
]



def _confidence() -> float:
    return Field(0.95, ge=0.5, le=0.999, description="Confidence level of every interval.")


_Name = dict(max_length=255)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompareRequest(_Strict):
    """Compare a baseline with one or more others (runs, or configurations as config:KEY)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"refs": ["3", "7"], "margin": 0.02}]})
    refs: list[str] = Field(min_length=2, max_length=20, description="The baseline first, then each other: a run "
                            "id, uuid or uuid prefix, or config:KEY.", examples=[["3", "7"]])
    metric: str | None = Field(None, description="Figure to compare (default: the baseline's headline metric), "
                                                 "e.g. latency_p99_ms.", **_Name)
    margin: float = Field(0.02, gt=0, lt=1, description="Equivalence margin: ratios within 1 +- margin are "
                                                        "'no change'.")
    confidence: float = _confidence()
    force: bool = Field(False, description="Compare even when the task version or model hash differ.")


Bounds = create_model(
    "Bounds", __config__=ConfigDict(extra="forbid", frozen=True), __doc__="Bounds a recommendation must meet.",
    **{name: (float | None, Field(None, allow_inf_nan=False,
                                  description=f"{METRICS[metric].label} {op} this, in {METRICS[metric].unit}."))
       for name, (metric, op) in OPTION_BOUNDS.items()})


class RecommendRequest(_Strict):
    """The question of a recommendation: task, scenario, bounds, objective, and the load to plan for."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "task": "resnet50", "scenario": "offline", "bounds": {"min_accuracy_ratio": 0.99},
        "where": ["throughput >= 1000 /s"], "objective": "throughput"}]})
    task: str = Field(description="A local task (digits) or an MLPerf benchmark (resnet50, ...).", **_Name)
    scenario: str = Field(description="single_stream, multi_stream, server, offline or interactive.", **_Name)
    bounds: Bounds = Field(default_factory=Bounds, description="Bounds by name, each in its metric's unit.")
    where: list[str] = Field([], max_length=20, description="Bounds with their units: 'p99 <= 15 ms'.")
    objective: str = Field("cost", description="cost, throughput, latency, ... or a mix: 'mix:cost=0.7,p99=0.3'.",
                           **_Name)
    target_qps: float | None = Field(None, gt=0, allow_inf_nan=False, description="Target load: plan units and "
                                                                                  "cost for it.")
    headroom: float = Field(0.2, ge=0, le=10, description="Spare capacity above the target load.")
    n_plus_one: bool = Field(True, description="Add one spare unit to the plan.")
    tariff_usd_per_kwh: float | None = Field(None, ge=0, allow_inf_nan=False,
                                             description="Electricity price (default: the catalogue's).")
    utilisation: float | None = Field(None, gt=0, le=1, description="Fraction of paid hours serving load.")
    include_uncertain: bool = Field(False, description="Rank candidates whose verdict on some bound is uncertain.")
    pareto: str | None = Field(None, max_length=100, description="Two metrics for the Pareto frontier: 'cost,p99'.")
    what_if: bool = Field(False, description="Show how the answer moves with each bound, price and the load.")
    top: int = Field(10, ge=1, le=1000, description="Most rows per table.")


class AnalyseQuery(_Strict):
    """How to analyse a run."""

    confidence: float = _confidence()
    recompute: bool = Field(False, description="Compute the intervals from the per-query log even if stored.",
                            examples=[False])


class TrendQuery(_Strict):
    """Which runs to follow over time, and by what period."""

    by: Literal["quarter", "month", "year", "week", "day", "round"] = Field(
        "quarter", description="Period; round: MLPerf rounds (imported results only).", examples=["quarter"])
    task: str | None = Field(None, description="Only runs of this task.", examples=["digits"], **_Name)
    scenario: str | None = Field(None, description="Only runs of this scenario.", **_Name)
    backend: str | None = Field(None, description="Only runs on this backend.", **_Name)
    source: Literal["mlperf", "measured"] | None = Field(None, description="Only imported or measured runs.")
    confidence: float = _confidence()


class ExportQuery(_Strict):
    """Which runs to export as one table, and in what format."""

    format: Literal["csv", "parquet", "json"] = Field("csv", description="csv, parquet or json (records).",
                                                      examples=["csv"])
    task: str | None = Field(None, description="Only runs of this task.", examples=["digits"], **_Name)
    scenario: str | None = Field(None, description="Only runs of this scenario.", **_Name)
    backend: str | None = Field(None, description="Only runs on this backend.", **_Name)
    status: Literal["running", "complete", "failed", "aborted"] | None = Field(None, description="Only this status.")
    source: Literal["mlperf", "measured"] | None = Field(None, description="Only imported or measured runs.")
    limit: int | None = Field(None, ge=1, le=1_000_000, description="Most runs (newest first; default: all).")


class BundleQuery(_Strict):
    """Which runs to put in a run bundle."""

    run: list[str] = Field(min_length=1, max_length=PAGE_LIMIT, description="Runs by id, uuid or uuid prefix "
                                                                      "(repeat the parameter).", examples=[["3", "7"]])


class TrendReportQuery(_Strict):
    """The quarter of a trend report, or the MLPerf round-over-round report."""

    quarter: str | None = Field(None, pattern=r"^\d{4}Q[1-4]$", description="The quarter, e.g. 2026Q3 (needed "
                                "unless source is mlperf).", examples=["2026Q3"])
    source: Literal["mlperf"] | None = Field(None, description="mlperf: the round-over-round report instead.")
    task: str | None = Field(None, description="Only runs of this task.", **_Name)
    scenario: str | None = Field(None, description="Only runs of this scenario.", **_Name)
    confidence: float = _confidence()
    top: int = Field(8, ge=1, le=30, description="Series drawn per chart.")
