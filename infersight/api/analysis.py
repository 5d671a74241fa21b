"""Analyse a run, compare runs, follow trends, and recommend: the statistics and the decision engine over HTTP.

Each handler validates its request, calls the one function the CLI calls for the same question
(analysis.views, and the recommendation the CLI's `recommend` and `report decision` share) and returns its
result as JSON, the same as the CLI's --json.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from analysis import views
from infersight.api import examples
from infersight.api.accounts import Principal
from infersight.api.auth import require
from infersight.api.models import plain
from infersight.api.problems import NOT_FOUND
from infersight.api.requests import (
    AnalyseQuery,
    CompareRequest,
    RecommendRequest,
    TrendQuery,
)
from infersight.api.runs import RunRef

router = APIRouter(tags=["analysis"])



def _example(value: dict[str, Any], text: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": text, "content": {"application/json": {"example": value}}}}


@router.get("/runs/{run_ref}/analysis", response_model=dict[str, Any], summary="Confidence intervals of a run's figures",
            responses={**NOT_FOUND, **_example(examples.ANALYSE, "As `infersight analyze RUN --json` prints it.")})
def analyse(request: Request, run_ref: RunRef, query: Annotated[AnalyseQuery, Query()],
            principal: Principal = require("analysis:read")) -> dict[str, Any]:
    """p50/p90/p99 latency, mean and throughput with intervals: exact order-statistic intervals for
    percentiles, BCa bootstrap or batch means (under autocorrelation) for the mean and throughput."""
    return plain(views.analyze_run(request.app.state.store, run_ref, confidence=query.confidence,
                                   recompute=query.recompute))


@router.post("/compare", response_model=dict[str, Any], summary="Compare runs",
             responses={**NOT_FOUND, **_example(examples.COMPARE, "As `infersight compare --json` prints it.")})
def compare(request: Request, body: CompareRequest, principal: Principal = require("analysis:read")) -> dict[str, Any]:
    """The baseline against each other: ratios of geometric means and medians with intervals, Welch t on
    logs, Mann-Whitney U, TOST equivalence against the margin, Benjamini-Hochberg q-values, and a verdict."""
    return plain(views.compare_refs(request.app.state.store, body.refs, metric=body.metric, margin=body.margin,
                                    confidence=body.confidence, force=body.force))


@router.get("/trend", response_model=dict[str, Any], summary="Trends of headline figures by period",
            responses=_example(examples.TREND, "As `infersight trend --json` prints it."))
def trend(request: Request, query: Annotated[TrendQuery, Query()],
          principal: Principal = require("analysis:read")) -> dict[str, Any]:
    """Per task / variant / scenario / system / backend: Theil-Sen slope with its interval, Mann-Kendall,
    the last period-over-period change, change points and outlier runs."""
    return plain(views.trends(request.app.state.store, by=query.by, task=query.task, scenario=query.scenario,
                              backend=query.backend, source=query.source, confidence=query.confidence))


@router.post("/recommend", response_model=dict[str, Any], summary="Recommend the best option under constraints",
             responses=_example(examples.RECOMMEND, "As `infersight recommend --json` prints it."))
def recommend(request: Request, body: RecommendRequest,
              principal: Principal = require("analysis:read")) -> dict[str, Any]:
    """A ranked answer (options that cannot be told apart share a rank), P(meets) per constraint, the binding
    constraint, why each excluded option failed, a capacity plan and what-if; priced with the shipped
    example catalogue (engine/catalog_example.yaml)."""
    rec, frame, catalog = recommendation(request.app.state.store, body)
    return plain({"task": body.task, "scenario": body.scenario, "candidates": len(frame),
                  "catalog": str(catalog.source), "catalog_is_example": catalog.is_example,
                  **rec.to_dict(limit=body.top)})


def recommendation(store: Any, body: RecommendRequest) -> tuple[Any, Any, Any]:
    """(recommendation, candidates, catalogue) for a request, through the function the CLI's `recommend` and
    `report decision` share (until the engine has a service function of its own)."""
    from infersight.cli.recommend import _recommendation

    return _recommendation(store, body.task, body.scenario, where=tuple(body.where), objective=body.objective,
                           target_qps=body.target_qps, headroom=body.headroom, n_plus_one=body.n_plus_one,
                           catalog_path=None, tariff_usd_per_kwh=body.tariff_usd_per_kwh,
                           utilisation=body.utilisation, include_uncertain=body.include_uncertain,
                           pareto=body.pareto, what_if=body.what_if, bounds=body.bounds.model_dump())
