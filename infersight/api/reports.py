"""The HTML reports (self-contained, offline) of a run, a comparison, a decision and a quarter's trends."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from infersight.api.accounts import Principal
from infersight.api.analysis import comparison, question
from infersight.api.auth import require
from infersight.api.problems import NOT_FOUND
from infersight.api.requests import CompareRequest, RecommendRequest, TrendReportQuery
from infersight.api.runs import RunRef
from reports.services import (
    CompareReportRequest,
    DecisionReportRequest,
    ReportRequest,
    RoundsReportRequest,
    RunReportRequest,
    TrendReportRequest,
    render_report,
)
from runner.errors import AnalysisError

router = APIRouter(prefix="/reports", tags=["reports"], default_response_class=HTMLResponse)
_PAGE = '<!DOCTYPE html><html lang="en"><head><title>digits offline</title>...'
_HTML = {200: {"content": {"text/html": {"schema": {"type": "string"}, "example": _PAGE}},
               "description": "One self-contained HTML document (styles, scripts and charts inline)."}}


@router.get("/run/{run_ref}", responses={**NOT_FOUND, **_HTML}, summary="The run report")
def run_report(request: Request, run_ref: RunRef, principal: Principal = require("reports:read")) -> HTMLResponse:
    """A run's headline with its interval, validity, accuracy, latency charts, settings and four cards."""
    return _render(request, RunReportRequest.parse(run=run_ref))


@router.post("/compare", responses={**NOT_FOUND, **_HTML}, summary="The comparison report")
def compare_report(request: Request, body: CompareRequest,
                   principal: Principal = require("reports:read")) -> HTMLResponse:
    """The comparison of `POST /compare` as a report: ratios with intervals, verdicts and charts."""
    return _render(request, CompareReportRequest.parse(comparison=comparison(body)))


@router.post("/decision", responses=_HTML, summary="The decision report")
def decision_report(request: Request, body: RecommendRequest,
                    principal: Principal = require("reports:read")) -> HTMLResponse:
    """The recommendation of `POST /recommend` as a report: the ranked answer, Pareto chart, exclusions, cost
    and capacity plan, what-if and where every figure comes from."""
    return _render(request, DecisionReportRequest.parse(question=question(body)))


@router.get("/trend", responses=_HTML, summary="The trend report")
def trend_report(request: Request, query: Annotated[TrendReportQuery, Query()],
                 principal: Principal = require("reports:read")) -> HTMLResponse:
    """The quarterly trend report (figures with intervals, change points, leaderboard, reproducibility), or
    with source=mlperf the round-over-round report of the imported MLPerf results."""
    if query.source == "mlperf":
        return _render(request, RoundsReportRequest.parse(task=query.task, scenario=query.scenario,
                                                          confidence=query.confidence))
    if query.quarter is None:
        raise AnalysisError("give quarter (e.g. 2026Q3), or source=mlperf for the MLPerf round report")
    return _render(request, TrendReportRequest.parse(**query.model_dump(exclude={"source"})))


def _render(request: Request, asked: ReportRequest) -> HTMLResponse:
    """The report of `asked`, rendered by the service function the CLI and the app call."""
    return HTMLResponse(render_report(asked, request.app.state.store).html)
