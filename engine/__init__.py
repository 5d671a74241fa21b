"""The decision engine: constraints, objectives, cost, Pareto frontier and ranking. See DESIGN.md section 6.

    from engine import Constraints, load_catalog, recommend
    from engine.candidates import load

    frame = load(store, "resnet50", "server")
    rec = recommend(frame, Constraints.build(max_p99_ms=15, min_accuracy_ratio=0.99), "cost",
                    load_catalog("engine/catalog_example.yaml"), target_load=20000)
    print(rec.explanation.lines, rec.ranked.head())

Pure functions over a candidates DataFrame (engine.candidates reads it from the store). Front doors
(`infersight recommend`, `report decision`, the app, the API) call the workflow above them,
`engine.services.recommend(RecommendRequest, store)`, which reads the candidates and calls `recommend`.
"""

from engine.catalog import EXAMPLE_CATALOG, Catalog, CatalogEntry, load_catalog
from engine.constraints import METRICS, Bound, Constraints, Objective, parse_bound, parse_objective
from engine.cost import CostModel
from engine.explain import Explanation
from engine.pareto import frontier, frontier_mask
from engine.recommendation import Recommendation, cost_model_for, recommend

__all__ = ["recommend", "Recommendation", "Explanation", "Constraints", "Bound", "Objective", "METRICS",
           "parse_bound", "parse_objective", "CostModel", "cost_model_for", "Catalog", "CatalogEntry",
           "load_catalog", "EXAMPLE_CATALOG", "frontier", "frontier_mask"]
