"""The statistics workflows every front door calls: one function each, a validated request in, a frozen
record out (DESIGN.md section 1).

    analyse(AnalyseRequest(run="12"), store) -> RunAnalysis             # a run's within-run CIs
    compare(CompareRequest(refs=("3", "7")), store) -> ComparisonResult  # runs or configurations
    reproducibility(ReproRequest(run="12"), store) -> ReproResult        # replicas of one configuration
    trend(TrendRequest(by="quarter"), store) -> TrendResult              # history by period

The statistics are analysis.views' (the store-level analyses); this module fixes their inputs as
requests and their results as records, and adds what a reader needs beside the figures: each side's
geometric mean and the significance and equivalence sentences of a comparison, and each trend
series' runs and Theil-Sen fit line (so a chart draws the record, and computes nothing).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from analysis import load, views
from analysis.repro import DEFAULT_TOLERANCE
from runner.errors import AnalysisError
from runner.requests import Record, Request

__all__ = ["AnalyseRequest", "CompareRequest", "ReproRequest", "TrendRequest", "RunAnalysis", "ComparisonSide",
           "RunFigure", "SideComparison", "ComparisonResult", "ReproResult", "TrendSeries", "TrendResult", "analyse", "compare",
           "reproducibility", "trend"]

_Confidence = Field(0.95, ge=0.5, le=0.999, description="Confidence level of every interval.")


class _Request(Request):
    error = AnalysisError


class AnalyseRequest(_Request):
    """A run's within-run intervals."""

    run: str = Field(min_length=1, description="Run id or uuid prefix.")
    confidence: float = _Confidence
    recompute: bool = Field(False, description="Compute the intervals from the performance log even if stored.")


class CompareRequest(_Request):
    """The first reference (the baseline) against each other one; a reference is a run or config:KEY."""

    refs: tuple[str, ...] = Field(min_length=2, description="Baseline first, then the others: run ids or "
                                                            "config:KEY.")
    metric: str | None = Field(None, description="Figure to compare (default: the baseline's headline metric).")
    margin: float = Field(0.02, gt=0, lt=1, description="Equivalence margin: ratios within 1 +- margin are "
                                                        "'no change'.")
    confidence: float = _Confidence
    force: bool = Field(False, description="Compare even when task version or model hash differ.")


class ReproRequest(_Request):
    """Reproducibility of one configuration: the stored replicas of `run`'s, or the given `runs`."""

    run: str | None = Field(None, description="Take every complete run of this run's configuration.")
    runs: tuple[int, ...] | None = Field(None, min_length=1, description="Or exactly these runs (replicas).")
    metric: str | None = Field(None, description="Figure to analyse (default: the headline metric).")
    tolerance: float = Field(DEFAULT_TOLERANCE, gt=0, le=1, description="Verdict: every run within +-tolerance "
                                                                       "of the median.")
    confidence: float = _Confidence

    @model_validator(mode="after")
    def _one_source(self) -> ReproRequest:
        if (self.run is None) == (self.runs is None):
            raise ValueError("give either run (its configuration's stored replicas) or runs, not both or neither")
        return self


class TrendRequest(_Request):
    """Trends of a figure by period, per task / variant / scenario / system / backend (or division)."""

    by: str = Field("quarter", description="quarter, month, year, week, day, or round (MLPerf rounds).")
    task: str | None = Field(None, description="Only runs of this task.")
    scenario: str | None = Field(None, description="Only runs of this scenario.")
    backend: str | None = Field(None, description="Only runs on this backend.")
    source: Literal["mlperf", "measured"] | None = Field(None, description="Only imported or measured runs.")
    metric: str | None = Field(None, description="Figure (default: each run's headline figure).")
    confidence: float = _Confidence


class RunAnalysis(Record):
    """A run's within-run CIs (stored, or computed on read), its headline's CI and its configuration."""

    run: dict[str, Any]
    config_key: str
    replicas: tuple[int, ...]
    ci: dict[str, Any] | None
    ci_source: str | None
    headline_ci: dict[str, Any] | None
    notes: tuple[str, ...]


class RunFigure(Record):
    """One run of a side: its figure of the metric compared, with the within-run CI where there is one."""

    run: int
    figure: float | None
    ci_low: float | None
    ci_high: float | None
    method: str = Field(description="How the interval was made, or why there is none (imported: no records).")
    provenance: str


class ComparisonSide(Record):
    """One side of a comparison: its reference, runs, the figures compared and their geometric mean, and
    each run's figure with its within-run CI (the unit compared may be batches: `values` are those)."""

    ref: str
    runs: tuple[int, ...]
    values: tuple[float, ...]
    geometric_mean: float
    run_figures: tuple[RunFigure, ...]


class SideComparison(ComparisonSide):
    """An other side against the baseline: ratios with intervals, the tests, the verdict, and in words."""

    n_a: int
    n_b: int
    ratio_geometric_means: dict[str, Any]
    ratio_medians: dict[str, Any]
    welch_t: float
    welch_df: float
    welch_p: float
    mann_whitney_u: float
    mann_whitney_p: float
    margin: float
    tost_p: float
    verdict: str
    q_value: float | None
    better: bool | None
    verdict_text: str = Field(description="The verdict with its direction: 'different (better)'.")
    significance: str = Field(description="The difference test in a sentence.")
    equivalence: str = Field(description="The equivalence test (TOST) in a sentence.")

    @property
    def outcome(self) -> str:
        """The verdict in one word, a difference told as better or worse where the metric says which:
        equivalent, better, worse, different or inconclusive."""
        if self.verdict == "different" and self.better is not None:
            return "better" if self.better else "worse"
        return self.verdict


class ComparisonResult(Record):
    """The baseline against each other side (see analysis.views.compare_refs)."""

    metric: str
    lower_is_better: bool
    unit: Literal["runs", "batches"]
    confidence: float
    margin: float
    baseline: ComparisonSide
    comparisons: tuple[SideComparison, ...]
    warnings: tuple[str, ...]


class ReproResult(Record):
    """Reproducibility of replicas: variance components, ICC, CVs, runs needed, outliers, the verdict."""

    model_config = {"extra": "allow"}  # the figures of analysis.repro.reproducibility, as it names them
    config_key: str
    metric: str
    units: str | None
    run_ids: tuple[int, ...]
    verdict: str


class TrendSeries(Record):
    """One series' trend (analysis.trend.trend_of_group), its runs in time order and its fit line."""

    group: dict[str, Any]
    lower_is_better: bool | None = None
    by: str
    runs: int
    periods: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    period_changes: tuple[dict[str, Any], ...]
    theil_sen: dict[str, Any] | None = None
    mann_kendall: dict[str, Any] | None = None
    ols: dict[str, Any] | None = None
    change_points: tuple[dict[str, Any], ...]
    outlier_runs: tuple[int, ...]
    points: tuple[dict[str, Any], ...] = Field(description="The runs: run_id, started_at, value, outlier.")
    fit: tuple[dict[str, Any], ...] = Field(description="Theil-Sen fit with its band: when, fit, low, high.")

    def label(self, keys: tuple[str, ...] = ("system", "backend", "model_variant", "metric")) -> str:
        """The series' name: system / backend / variant / metric."""
        return " / ".join(str(self.group.get(k)) for k in keys)


class TrendResult(Record):
    """Every series' trend over the runs the request selects."""

    by: str
    runs: int
    excluded_runs: int
    groups: tuple[TrendSeries, ...]


def analyse(request: AnalyseRequest, store: Any) -> RunAnalysis:
    """A run's within-run CIs, its headline's CI and its configuration's replicas."""
    return RunAnalysis.model_validate(views.analyze_run(store, request.run, confidence=request.confidence,
                                                        recompute=request.recompute))


def compare(request: CompareRequest, store: Any) -> ComparisonResult:
    """The baseline against each other reference (run-level figures with 2+ runs a side, else batches)."""
    result = views.compare_refs(store, list(request.refs), metric=request.metric, margin=request.margin,
                                confidence=request.confidence, force=request.force)
    alpha = 1 - result["confidence"]

    def side(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "geometric_mean": _gmean(entry["values"]),
                "run_figures": _run_figures(store, entry["runs"], result["metric"], result["confidence"])}

    return ComparisonResult.model_validate({
        **result, "baseline": side(result["baseline"]),
        "comparisons": [{**side(c), **_sentences(c, alpha)} for c in result["comparisons"]]})


def _gmean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values and min(values) > 0 else math.nan


def _run_figures(store: Any, run_ids: list[int], metric: str, confidence: float) -> list[dict[str, Any]]:
    """Each run's `metric` figure with its within-run CI (views.headline_ci over the run's stored or
    recomputed intervals; none for imported runs and for server's target QPS)."""
    out = []
    for run_id in run_ids:
        run = store.get_run(int(run_id))
        ci, source = load.run_ci(store, run, confidence=confidence)
        found = views.headline_ci(run.model_copy(update={"headline_metric": metric}), ci) or {}
        out.append({"run": run.id, "figure": load.run_figure(run, metric), "ci_low": found.get("low"),
                    "ci_high": found.get("high"), "method": found.get("method") or
                    (source if ci is None else "no interval for this figure"), "provenance": run.provenance})
    return out


def _sentences(c: dict[str, Any], alpha: float) -> dict[str, str]:
    """The verdict with its direction, and the difference and equivalence tests in words."""
    q = c["q_value"] if c.get("q_value") is not None else c["welch_p"]
    tests = f"Welch p = {c['welch_p']:.3g} (BH q = {q:.3g})"
    margin = c["margin"]
    direction = "" if c.get("better") is None else f" ({'better' if c['better'] else 'worse'})"
    return {"verdict_text": c["verdict"] + direction,
            "significance": f"significant: {tests} < {alpha:.2g}" if q < alpha else
            f"not significant: {tests} >= {alpha:.2g}",
            "equivalence": f"equivalent within +-{margin:.1%}: TOST p = {c['tost_p']:.3g} < {alpha:.2g}"
            if c["tost_p"] < alpha else
            f"not shown equivalent within +-{margin:.1%}: TOST p = {c['tost_p']:.3g} >= {alpha:.2g}"}


def reproducibility(request: ReproRequest, store: Any) -> ReproResult:
    """Reproducibility of a configuration's stored replicas (`run`) or of the given `runs`."""
    kwargs = {"metric": request.metric, "tolerance": request.tolerance, "confidence": request.confidence}
    if request.run is not None:
        return ReproResult.model_validate(views.repro_of_config(store, request.run, **kwargs))
    runs = [store.get_run(run_id) for run_id in request.runs]
    return ReproResult.model_validate(views.repro_of_runs(store, runs, **kwargs))


def trend(request: TrendRequest, store: Any) -> TrendResult:
    """Every series' trend by period, with its runs and Theil-Sen fit line."""
    result = views.trends(store, by=request.by, task=request.task, scenario=request.scenario,
                          backend=request.backend, source=request.source, metric=request.metric,
                          confidence=request.confidence)
    return TrendResult.model_validate(result)
