"""Analyse a run, compare runs, follow trends, and recommend: the statistics and the decision engine over HTTP.

Each handler validates its request, calls the one service function the CLI and the app call for the same
question (analysis.services, engine.services) and returns its record as JSON, the same as the CLI's --json.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from analysis import services
from engine import services as engine_services
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
    asked = services.AnalyseRequest.parse(run=run_ref, confidence=query.confidence, recompute=query.recompute)
    return plain(services.analyse(asked, request.app.state.store).to_dict())


@router.post("/compare", response_model=dict[str, Any], summary="Compare runs",
             responses={**NOT_FOUND, **_example(examples.COMPARE, "As `infersight compare --json` prints it.")})
def compare(request: Request, body: CompareRequest, principal: Principal = require("analysis:read")) -> dict[str, Any]:
    """The baseline against each other: ratios of geometric means and medians with intervals, Welch t on
    logs, Mann-Whitney U, TOST equivalence against the margin, Benjamini-Hochberg q-values, and a verdict."""
    return plain(services.compare(comparison(body), request.app.state.store).to_dict())


@router.get("/trend", response_model=dict[str, Any], summary="Trends of headline figures by period",
            responses=_example(examples.TREND, "As `infersight trend --json` prints it."))
def trend(request: Request, query: Annotated[TrendQuery, Query()],
          principal: Principal = require("analysis:read")) -> dict[str, Any]:
    """Per task / variant / scenario / system / backend: Theil-Sen slope with its interval, Mann-Kendall,
    the last period-over-period change, change points and outlier runs."""
    asked = services.TrendRequest.parse(**query.model_dump())
    return plain(services.trend(asked, request.app.state.store).to_dict())


@router.post("/recommend", response_model=dict[str, Any], summary="Recommend the best option under constraints",
             responses=_example(examples.RECOMMEND, "As `infersight recommend --json` prints it."))
def recommend(request: Request, body: RecommendRequest,
              principal: Principal = require("analysis:read")) -> dict[str, Any]:
    """A ranked answer (options that cannot be told apart share a rank), P(meets) per constraint, the binding
    constraint, why each excluded option failed, a capacity plan and what-if; priced with the shipped
    example catalogue (engine/catalog_example.yaml)."""
    return plain(engine_services.recommend(question(body), request.app.state.store).to_dict(limit=body.top))


def comparison(body: CompareRequest) -> services.CompareRequest:
    """The service's compare request for an API body."""
    return services.CompareRequest.parse(**body.model_dump())


def question(body: RecommendRequest) -> engine_services.RecommendRequest:
    """The engine's request for an API body (priced with the shipped example catalogue: a client cannot name
    a file on the server)."""
    fields = body.model_dump(exclude={"top", "pareto", "bounds"})
    bounds = {k: v for k, v in body.bounds.model_dump().items() if v is not None}
    pareto = tuple(p.strip() for p in body.pareto.split(",")) if body.pareto else None
    return engine_services.RecommendRequest.parse(**fields, bounds=bounds, pareto=pareto, catalog=None)
