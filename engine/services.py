"""The recommendation workflow every front door calls (`infersight recommend`, `infersight report decision`,
the app's Recommend and Reports pages, the REST API): one request with one set of defaults, one function.

    request = RecommendRequest.parse(task="resnet50", scenario="server", bounds={"max_p99_ms": 15},
                                     target_qps=20000)
    result = recommend(request, store)       # RecommendResult: the Recommendation and what it was made from
    result.recommendation.winner, result.to_dict(limit=10)

Prices: `catalog` names a price and power catalogue (YAML or CSV); left out or blank, the shipped EXAMPLE
catalogue (engine/catalog_example.yaml) is used and every answer says its prices are examples. That is
the one rule for every front door.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, field_validator

from engine.candidates import load
from engine.catalog import EXAMPLE_CATALOG, Catalog, load_catalog
from engine.constraints import OPTION_BOUNDS, Constraints
from engine.recommendation import Recommendation, cost_model_for
from engine.recommendation import recommend as rank
from runner.errors import EngineError
from runner.requests import Request

__all__ = ["RecommendRequest", "RecommendResult", "recommend", "CATALOG_RULE"]

CATALOG_RULE = "left out or blank: the shipped EXAMPLE catalogue (engine/catalog_example.yaml), whose prices are examples"


class RecommendRequest(Request):
    """A recommendation question: the task and scenario, bounds, objective, load and prices."""

    error = EngineError
    task: str = Field(min_length=1, description="A local task (digits, charlm) or an MLPerf benchmark (resnet50, "
                                                "bert, llama2-70b, ...).")
    scenario: str = Field(min_length=1, description="single_stream, multi_stream, server, offline, interactive.")
    bounds: dict[str, float] = Field(default_factory=dict, description="Bounds by keyword, the unit in the name: "
                                     + ", ".join(OPTION_BOUNDS) + ".")
    where: tuple[str, ...] = Field((), description="Bounds as text with their unit: 'p99 <= 15 ms'.")
    objective: str = Field("cost", description="cost, throughput, throughput_per_usd, throughput_per_watt, "
                                               "latency, p50, ... or a mix: 'mix:cost=0.7,p99=0.3'.")
    target_qps: float | None = Field(None, gt=0, description="Target load, inferences/s: plan units and cost "
                                                             "for it.")
    headroom: float = Field(0.2, ge=0, le=10, description="Spare capacity above the target load.")
    n_plus_one: bool = Field(True, description="Add one spare unit to the plan.")
    catalog: str | None = Field(None, description="Price and power catalogue, YAML or CSV; " + CATALOG_RULE + ".")
    tariff_usd_per_kwh: float | None = Field(None, ge=0, description="Electricity price (default: the "
                                                                     "catalogue's).")
    utilisation: float | None = Field(None, gt=0, le=1, description="Fraction of paid hours serving load "
                                                                     "(default: the catalogue's, else 1).")
    include_uncertain: bool = Field(False, description="Rank candidates whose verdict on a bound is uncertain "
                                                       "too.")
    pareto: tuple[str, str] | None = Field(None, description="The Pareto frontier's two metrics, e.g. cost, p99.")
    what_if: bool = Field(False, description="Move each bound, price, tariff and the load by -50%..+50%.")

    @field_validator("bounds")
    @classmethod
    def _known_bounds(cls, bounds: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(bounds) - set(OPTION_BOUNDS))
        if unknown:
            raise ValueError(f"unknown bound(s) {', '.join(unknown)}; known: {', '.join(OPTION_BOUNDS)}")
        return bounds


@dataclass(frozen=True)
class RecommendResult:
    """The answer and what it was made from: the request, the candidates counted, the catalogue used."""

    request: RecommendRequest
    recommendation: Recommendation
    candidates: int
    measured: int
    catalog: Catalog

    def to_dict(self, limit: int | None = 20) -> dict[str, Any]:
        """JSON-compatible: the question, the candidates counted, the catalogue, then the recommendation."""
        return {"task": self.request.task, "scenario": self.request.scenario, "candidates": self.candidates,
                "candidates_measured": self.measured, "catalog": self.catalog.source,
                "catalog_is_example": self.catalog.is_example, **self.recommendation.to_dict(limit=limit)}


def recommend(request: RecommendRequest, store: Any) -> RecommendResult:
    """Read the candidates of the request's task and scenario from `store` and rank them (engine.recommend)."""
    constraints = Constraints.build(list(request.where), **request.bounds)
    catalog = load_catalog((request.catalog or "").strip() or EXAMPLE_CATALOG)
    model = cost_model_for(catalog, tariff_usd_per_kwh=request.tariff_usd_per_kwh,
                           utilisation=request.utilisation, headroom=request.headroom,
                           n_plus_one=request.n_plus_one)
    frame = load(store, request.task, request.scenario)
    rec = rank(frame, constraints, request.objective, catalog, target_load=request.target_qps, cost=model,
               pareto=request.pareto, what_if=request.what_if, include_uncertain=request.include_uncertain)
    measured = int((frame["provenance"] == "measured").sum())
    return RecommendResult(request, rec, len(frame), measured, catalog)
