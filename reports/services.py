"""The reports' workflows every front door calls: describe a run, render a report (DESIGN.md section 1).

    describe_run(DescribeRunRequest(run="12"), store) -> RunDescription   # the run view: app, run report
    render_report(TrendReportRequest(quarter="2026Q3"), store) -> Report  # a self-contained HTML file

A report request says its `kind` (run, compare, decision, trend, mlperf_rounds), so one endpoint can take
any of them (`ReportRequest` is their tagged union). A comparison report takes analysis.services's
CompareRequest and a decision report engine.services's RecommendRequest: the same question as
`infersight compare` and `infersight recommend`, and the same answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from analysis.services import CompareRequest
from engine.services import RecommendRequest
from engine.services import recommend as recommend_for
from runner.errors import InfersightError
from runner.requests import Record, Request
from runner.store.records import RunRecord

__all__ = ["DescribeRunRequest", "RunDescription", "RunReportRequest", "CompareReportRequest",
           "DecisionReportRequest", "TrendReportRequest", "RoundsReportRequest", "ReportRequest", "Report",
           "describe_run", "render_report"]

_Note = Field("", max_length=2000, description="A note shown at the top of the report (who asked, why).")


class DescribeRunRequest(Request):
    """One stored run's view."""

    run: str = Field(min_length=1, description="Run id or uuid prefix.")
    charts: bool = Field(True, description="Draw its charts (reads the per-query log); false: figures and cards "
                                           "only (`infersight show --json`).")


class RunDescription(Record):
    """A stored run (`infersight show --json`, the app's Runs page, the run report): the run, its four
    cards as stored, where an imported result comes from, everything the run view shows
    (reports.run.run_report_context) and its Vega-Lite charts."""

    run_id: int
    title: str
    run: RunRecord
    cards: dict[str, dict[str, Any] | None] = Field(description="The four cards by kind (None where missing).")
    imported: dict[str, Any] | None = Field(description="An imported result's origin (round, submitter, ...).")
    context: dict[str, Any]
    charts: tuple[dict[str, Any], ...] = Field(description="key, spec (Vega-Lite) and caption of each chart.")


class RunReportRequest(Request):
    kind: Literal["run"] = "run"
    run: str = Field(min_length=1, description="Run id or uuid prefix.")


class CompareReportRequest(Request):
    kind: Literal["compare"] = "compare"
    comparison: CompareRequest
    note: str = _Note


class DecisionReportRequest(Request):
    kind: Literal["decision"] = "decision"
    question: RecommendRequest
    note: str = _Note


class TrendReportRequest(Request):
    kind: Literal["trend"] = "trend"
    quarter: str = Field(description="The quarter to report on, e.g. 2026Q3.")
    task: str | None = Field(None, description="Only runs of this task.")
    scenario: str | None = Field(None, description="Only runs of this scenario.")
    confidence: float = Field(0.95, ge=0.5, le=0.999, description="Confidence level of every interval.")
    top: int = Field(8, ge=1, le=30, description="Series drawn per chart (every series stays in the tables).")
    note: str = _Note


class RoundsReportRequest(Request):
    kind: Literal["mlperf_rounds"] = "mlperf_rounds"
    task: str | None = Field(None, description="Only this benchmark.")
    scenario: str | None = Field(None, description="Only this scenario.")
    confidence: float = Field(0.95, ge=0.5, le=0.999, description="Confidence level of every interval.")
    note: str = _Note


ReportRequest = Annotated[RunReportRequest | CompareReportRequest | DecisionReportRequest | TrendReportRequest |
                          RoundsReportRequest, Field(discriminator="kind")]


class Report(Record):
    """A rendered report: its kind, the file name it is offered as, the HTML, and what it is of."""

    kind: str
    file_name: str
    html: str
    about: dict[str, Any] = Field(description="What the report is of: run, baseline, task, winner, quarter, ...")


def describe_run(request: DescribeRunRequest, store: Any) -> RunDescription:
    """The run view of one stored run: title, headline with its CI, validity and why, accuracy, settings,
    seeds, provenance, cards, completeness, and its charts."""
    from reports.run import run_report_context

    context, charts = run_report_context(store, request.run, charts=request.charts)
    run = context["run"]
    return RunDescription(run_id=run.id, title=context["title"], run=run, cards=context["card_data"],
                          imported=context["imported"], context=context,
                          charts=tuple({"key": c.key, "spec": c.spec, "caption": c.caption} for c in charts))


def render_report(request: ReportRequest, store: Any) -> Report:
    """The report the request asks for, rendered to one self-contained HTML document."""
    render = {"run": _run, "compare": _compare, "decision": _decision, "trend": _trend,
              "mlperf_rounds": _rounds}.get(getattr(request, "kind", None))
    if render is None:
        raise InfersightError(f"render_report: not a report request: {type(request).__name__}")
    file_name, html, about = render(request, store)
    return Report(kind=request.kind, file_name=file_name, html=html, about=about)


def _run(request: RunReportRequest, store: Any) -> tuple[str, str, dict[str, Any]]:
    from reports._page import ChartBlock, render_page

    view = describe_run(DescribeRunRequest(run=request.run), store)
    html = render_page("run.html.j2", view.context, [ChartBlock(**c) for c in view.charts])
    return f"run-{view.run_id}.html", html, {"run": view.run_id}


def _compare(request: CompareReportRequest, store: Any) -> tuple[str, str, dict[str, Any]]:
    from reports.compare import render_compare_report

    c = request.comparison
    html = render_compare_report(store, c.refs, metric=c.metric, margin=c.margin, confidence=c.confidence,
                                 force=c.force, note=request.note)
    return "compare.html", html, {"baseline": c.refs[0], "others": " ".join(c.refs[1:])}


def _decision(request: DecisionReportRequest, store: Any) -> tuple[str, str, dict[str, Any]]:
    from reports.decision import render_decision_report

    q = request.question
    result = recommend_for(q, store)
    rec = result.recommendation
    html = render_decision_report(rec, task=q.task, scenario=q.scenario, candidates=result.candidates,
                                  catalog=result.catalog, note=request.note)
    return (f"decision-{q.task}-{q.scenario}.html", html,
            {"task": q.task, "scenario": q.scenario, "winner": (rec.winner or {}).get("candidate", "none")})


def _trend(request: TrendReportRequest, store: Any) -> tuple[str, str, dict[str, Any]]:
    from reports.trend import parse_quarter, render_trend_report

    period = str(parse_quarter(request.quarter))
    html = render_trend_report(store, period, task=request.task, scenario=request.scenario,
                               confidence=request.confidence, top=request.top, note=request.note)
    return f"trends-{period}.html", html, {"quarter": period, "task": request.task or "every task"}


def _rounds(request: RoundsReportRequest, store: Any) -> tuple[str, str, dict[str, Any]]:
    from reports.mlperf_rounds import render_rounds_report

    html = render_rounds_report(store, task=request.task, scenario=request.scenario,
                                confidence=request.confidence, note=request.note)
    return "mlperf-rounds.html", html, {"source": "mlperf", "task": request.task or "every task"}
