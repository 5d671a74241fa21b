"""The HTML reports (self-contained, offline) of a run, a comparison, a decision and a quarter's trends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from infersight.api.accounts import Principal
from infersight.api.analysis import recommendation
from infersight.api.auth import require
from infersight.api.problems import NOT_FOUND
from infersight.api.requests import CompareRequest, RecommendRequest, TrendReportQuery
from infersight.api.runs import RunRef
from runner.errors import AnalysisError

router = APIRouter(prefix="/reports", tags=["reports"], default_response_class=HTMLResponse)
_PAGE = '<!DOCTYPE html><html lang="en"><head><title>digits offline</title>...'
_HTML = {200: {"content": {"text/html": {"schema": {"type": "string"}, "example": _PAGE}},
               "description": "One self-contained HTML document (styles, scripts and charts inline)."}}


@router.get("/run/{run_ref}", responses={**NOT_FOUND, **_HTML}, summary="The run report")
def run_report(request: Request, run_ref: RunRef, principal: Principal = require("reports:read")) -> HTMLResponse:
    """A run's headline with its interval, validity, accuracy, latency charts, settings and four cards."""
    from reports.run import render_run_report

    return HTMLResponse(render_run_report(request.app.state.store, run_ref))


@router.post("/compare", responses={**NOT_FOUND, **_HTML}, summary="The comparison report")
def compare_report(request: Request, body: CompareRequest,
                   principal: Principal = require("reports:read")) -> HTMLResponse:
    """The comparison of `POST /compare` as a report: ratios with intervals, verdicts and charts."""
    from reports.compare import render_compare_report

    return HTMLResponse(render_compare_report(request.app.state.store, body.refs, metric=body.metric,
                                              margin=body.margin, confidence=body.confidence, force=body.force))


@router.post("/decision", responses=_HTML, summary="The decision report")
def decision_report(request: Request, body: RecommendRequest,
                    principal: Principal = require("reports:read")) -> HTMLResponse:
    """The recommendation of `POST /recommend` as a report: the ranked answer, Pareto chart, exclusions, cost
    and capacity plan, what-if and where every figure comes from."""
    from reports.decision import render_decision_report

    rec, frame, catalog = recommendation(request.app.state.store, body)
    return HTMLResponse(render_decision_report(rec, task=body.task, scenario=body.scenario, candidates=len(frame),
                                               catalog=catalog))


@router.get("/trend", responses=_HTML, summary="The trend report")
def trend_report(request: Request, query: Annotated[TrendReportQuery, Query()],
                 principal: Principal = require("reports:read")) -> HTMLResponse:
    """The quarterly trend report (figures with intervals, change points, leaderboard, reproducibility), or
    with source=mlperf the round-over-round report of the imported MLPerf results."""
    store = request.app.state.store
    if query.source == "mlperf":
        from reports.mlperf_rounds import render_rounds_report

        return HTMLResponse(render_rounds_report(store, task=query.task, scenario=query.scenario,
                                                 confidence=query.confidence))
    if query.quarter is None:
        raise AnalysisError("give quarter (e.g. 2026Q3), or source=mlperf for the MLPerf round report")
    from reports.trend import render_trend_report

    return HTMLResponse(render_trend_report(store, query.quarter, task=query.task, scenario=query.scenario,
                                            confidence=query.confidence, top=query.top))
