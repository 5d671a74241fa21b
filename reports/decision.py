"""The decision report: a recommendation of the decision engine as one self-contained HTML file, to
attach to a purchase request.

It shows what the app's Recommend page shows, from the same `engine.Recommendation`: the question
(constraints, objective, target load, cost model, price catalogue), the winner and why (binding
constraint, ties), the ranked candidates with their objective's interval, P(meets) per constraint
and overall (candidates whose objective intervals overlap share a rank), the Pareto chart
(`reports.charts.pareto_chart`, the page's own), why every excluded candidate failed and by how
much, the capacity plan, what-if moves and the assumptions; and the provenance of every figure:
the runs each candidate's figures come from, measured here or published by an MLPerf submitter in
a round, how its interval was obtained, and where its price and power come from.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

from reports import charts
from reports._page import ChartBlock, render_page
from reports._page import significant as fmt  # one number format for every report

__all__ = ["render_decision_report", "decision_report_context", "figure_columns"]

_ALWAYS = ("samples_per_s", "p99_ms", "accuracy_ratio", "cost_per_million_usd")
_OBJECTIVE_ROWS = 40  # candidates drawn in the objective chart (every one is in the tables)


def render_decision_report(rec: Any, *, task: str, scenario: str, candidates: int | None = None,
                           catalog: Any = None, note: str = "") -> str:
    """The decision report of a recommendation (`engine.recommend(...)`) for `task` under `scenario`.

    `candidates` is how many candidates were considered (the frame's length), `catalog` the
    `engine.Catalog` that priced them (its source and whether it is the shipped example are shown).
    """
    context, chart_list = decision_report_context(rec, task=task, scenario=scenario, candidates=candidates,
                                                  catalog=catalog, note=note)
    return render_page("decision.html.j2", context, chart_list)


def decision_report_context(rec: Any, *, task: str, scenario: str, candidates: int | None = None,
                            catalog: Any = None, note: str = "") -> tuple[dict[str, Any], list[ChartBlock]]:
    """Everything the decision template shows, and its charts."""
    from engine import METRICS

    columns = figure_columns(rec)
    heads = [_column_title(METRICS, c) for c in columns]
    chart_list = []
    if not rec.ranked.empty:
        chart_list.append(charts.block("objective", objective_chart(rec),
                                       f"The objective of the {min(len(rec.ranked), _OBJECTIVE_ROWS)} best-ranked "
                                       f"candidates with its 95% interval; candidates whose intervals overlap share "
                                       f"a rank (a tie)."))
        pareto = _pareto_block(rec, METRICS)
        if pareto is not None:
            chart_list.append(pareto)
    context = dict(
        title=f"Decision: {task} under {scenario}", task=task, scenario=scenario, note=note,
        question=_question(rec, candidates, catalog), winner=rec.winner, explanation=rec.explanation,
        figure_heads=heads, bound_heads=_bound_heads(rec),
        ranked=[_ranked_row(rec, r, columns) for r in _records(rec.ranked)],
        excluded=[_excluded_row(rec, r) for r in _records(rec.excluded)], frontier=_frontier_rows(rec, METRICS),
        capacity=_capacity_rows(rec.capacity), what_if=_what_if_rows(rec.what_if),
        assumptions=list(rec.assumptions), provenance=_provenance_rows(rec),
        capacity_note="no target load was given" if not rec.target_load else "no candidate is ranked",
        objective_unit=_objective_unit(rec), example_prices=bool(catalog is not None and catalog.is_example),
        catalog_source=getattr(catalog, "source", "") or "")
    return context, chart_list


def _objective_unit(rec: Any) -> str:
    """The objective's name and unit, shown under its figure: 'cost per million tokens, USD'."""
    if rec.objective.is_mix:
        return "weighted score (1 = best)"
    m = rec.objective.metric
    return f"{m.label}, {m.unit}" if m.unit and m.unit != "ratio" else m.label


def figure_columns(rec: Any) -> list[str]:
    """The candidates' figure columns a decision shows: those its bounds and objective name, then
    throughput, p99 latency, accuracy ratio, cost per million (and units with a target load), leaving
    out any that no ranked candidate has."""
    from engine import METRICS

    wanted = [METRICS[b.metric].column for b in rec.constraints]
    wanted += [METRICS[name].column for name in rec.objective.weights]
    wanted += list(_ALWAYS) + (["units"] if rec.target_load else [])
    frame = rec.ranked if not rec.ranked.empty else rec.excluded
    return [c for c in dict.fromkeys(wanted) if c in frame and frame[c].notna().any()]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")


def _with_ci(row: dict[str, Any], column: str) -> str:
    value, lo, hi = row.get(column), row.get(f"{column}_lo"), row.get(f"{column}_hi")
    text = fmt(value)
    if lo is not None and hi is not None and all(map(math.isfinite, (lo, hi))) and (lo != value or hi != value):
        text += f" [{fmt(lo, 3)}, {fmt(hi, 3)}]"
    return text


def _column_title(metrics: dict[str, Any], column: str) -> str:
    found = next((m for m in metrics.values() if m.column == column), None)
    return f"{found.label} ({found.unit})" if found is not None and found.unit else column


def _bound_heads(rec: Any) -> list[tuple[str, str]]:
    """(column, heading) of each P(meets) column of the ranked table, in the bounds' order."""
    columns = [c for c in rec.ranked.columns if c.startswith("p_") and c != "p_all"]
    return list(zip(columns, [f"P({b.text()})" for b in rec.constraints]))


def _question(rec: Any, candidates: int | None, catalog: Any) -> list[tuple[str, Any]]:
    objective = rec.objective
    better = "higher" if objective.is_mix or objective.metric.better == "higher" else "lower"
    rows = [("constraints", ", ".join(rec.constraints.texts()) or "none"),
            ("objective", f"{objective.text()} ({better} is better)"),
            ("target load", f"{fmt(rec.target_load)} inferences/s" if rec.target_load else "none (one unit each)"),
            ("candidates considered", candidates if candidates is not None else len(rec.ranked) + len(rec.excluded)),
            ("ranked / excluded", f"{len(rec.ranked)} / {len(rec.excluded)}")]
    rows += [(f"cost model: {k}", v) for k, v in rec.cost_model.to_dict().items()]
    if catalog is not None:
        rows.append(("price catalogue", f"{catalog.source or 'in memory'}"
                     + (" (EXAMPLE figures, not quotes)" if catalog.is_example else "")))
    return rows


def _ranked_row(rec: Any, row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    rank = "-" if row["rank"] != row["rank"] else f"{int(row['rank'])}{'=' if row['tied'] else ''}"
    return dict(rank=rank, candidate=row["candidate"], objective=_with_ci(row, "objective"), p_all=fmt(row["p_all"], 3),
                p=[fmt(row[c], 3) for c, _ in _bound_heads(rec)], figures=[_with_ci(row, c) for c in columns],
                status=str(row["status"]), runs=_runs_text(row), tied=bool(row["tied"]))


def _run_list(run_ids: Any, limit: int | None = None) -> str:
    """'3, 4, 5' from the candidates' '3,4,5'; beyond `limit` ids, the first ones and how many in all."""
    ids = [i for i in str(run_ids or "").split(",") if i]
    if limit is not None and len(ids) > limit:
        return f"{', '.join(ids[:limit])}, ... ({len(ids)} runs)"
    return ", ".join(ids) or "-"


def _runs_text(row: dict[str, Any]) -> str:
    if row.get("provenance") == "imported":
        return f"{row.get('source', '')}, {row.get('submitter', '')}: run {_run_list(row['run_ids'])}"
    return f"measured here, run{'s' if int(row.get('n_runs') or 1) > 1 else ''} {_run_list(row['run_ids'], 6)}"


def _excluded_row(rec: Any, row: dict[str, Any]) -> dict[str, Any]:
    return dict(candidate=row["candidate"], status=str(row["status"]), failed=str(row["failed"]),
                shortfall=fmt(row["shortfall"]), shortfall_rel="-" if row["shortfall_rel"] != row["shortfall_rel"]
                else f"{row['shortfall_rel']:+.1%}", reasons=rec.why_excluded(row["candidate"]), runs=_runs_text(row))


def _frontier_rows(rec: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    x, y = (metrics[a] for a in rec.pareto_axes)
    rows = [(r["candidate"], fmt(r[x.column]), fmt(r[y.column]), fmt(r["rank"])) for r in _records(rec.frontier)]
    return dict(x=f"{x.label} ({x.unit}, {x.better} is better)", y=f"{y.label} ({y.unit}, {y.better} is better)",
                rows=rows)


def _capacity_rows(capacity: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not capacity:
        return []
    units = f"{fmt(capacity['units'])} (from {fmt(capacity['units_lo'])} to {fmt(capacity['units_hi'])} over the " \
            f"throughput interval)"
    return [("candidate", capacity["candidate"]), ("target load", f"{fmt(capacity['target_load_per_s'])} inferences/s"),
            ("headroom", f"{capacity['headroom']:.0%}"), ("N+1 spare unit", "yes" if capacity["n_plus_one"] else "no"),
            ("throughput of one unit", f"{fmt(capacity['unit_samples_per_s'])} inferences/s"),
            ("capacity per unit from", capacity.get("capacity_basis") or "its measured throughput"), ("units", units),
            ("cost per hour", f"{fmt(capacity['cost_per_hour_usd'])} USD/h"),
            ("cost per million inferences", f"{fmt(capacity['cost_per_million_usd'])} USD"),
            *([("cost per million tokens", f"{fmt(capacity['cost_per_million_tokens_usd'])} USD")]
              if capacity.get("cost_per_million_tokens_usd") is not None else []),
            ("purchase", f"{fmt(capacity['purchase_usd'])} USD"), ("power", f"{fmt(capacity['power_w'])} W"),
            ("price source", capacity.get("price_source") or "-")]


def _what_if_rows(what_if: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    if what_if is None:
        return None
    return [dict(parameter=r["parameter"], change=r["change"], value=fmt(r["value"]), winner=r["winner"],
                 changed=bool(r["winner_changed"]), ranked=r["ranked"]) for r in _records(what_if)]


def _provenance_rows(rec: Any) -> list[dict[str, Any]]:
    """Where every candidate's figures, interval, price and power come from."""
    out = []
    for status, frame in (("ranked", rec.ranked), ("excluded", rec.excluded)):
        for row in _records(frame):
            out.append(dict(candidate=row["candidate"], status=status, source=row.get("source") or "-",
                            submitter=row.get("submitter") or "-", run_ids=_run_list(row.get("run_ids")),
                            n_runs=row.get("n_runs"), ci=row.get("ci_source") or "-",
                            compliance=_compliance(row), price=row.get("price_source") or "-",
                            power=row.get("power_source") or "-"))
    return out


def _compliance(row: dict[str, Any]) -> str:
    if "quick" in row and row.get("quick"):
        return "quick run (non-compliant)"
    if "compliant" in row:
        return "compliant" if row.get("compliant") else "non-compliant"
    return "-"


def objective_chart(rec: Any) -> alt.LayerChart:
    """The objective of the best-ranked candidates with its interval, best at the top, ties coloured."""
    top = rec.ranked.head(_OBJECTIVE_ROWS)
    data = pd.DataFrame({"candidate": top["candidate"].astype(str), "objective": top["objective"],
                         "low": top["objective_lo"], "high": top["objective_hi"],
                         "rank": [f"{int(r)}{'=' if t else ''}" for r, t in zip(top["rank"], top["tied"])],
                         "tie": ["tied" if t else "alone" for t in top["tied"]], "p_all": top["p_all"]})
    unit = "score" if rec.objective.is_mix else rec.objective.metric.unit
    y = alt.Y("candidate:N", sort=list(data["candidate"]), title=None, axis=alt.Axis(labelLimit=330))
    colour = alt.Color("tie:N", scale=alt.Scale(domain=["alone", "tied"], range=[charts.ACCENT, charts.WARN]),
                       legend=alt.Legend(orient="bottom", title="rank shared with another"))
    bars = alt.Chart(data).mark_rule(strokeWidth=2).encode(x="low:Q", x2="high:Q", y=y, color=colour)
    dots = alt.Chart(data).mark_point(filled=True, size=60).encode(
        x=alt.X("objective:Q", title=f"{rec.objective.text()} ({unit})", scale=alt.Scale(zero=False)), y=y,
        color=colour, tooltip=["rank:N", "candidate:N", alt.Tooltip("objective:Q", format=".4g"),
                               alt.Tooltip("low:Q", format=".4g"), alt.Tooltip("high:Q", format=".4g"),
                               alt.Tooltip("p_all:Q", title="P(all)", format=".2f")])
    return alt.layer(bars, dots).properties(width=charts.WIDTH - 330, height=max(60, 20 * len(data)))


def _pareto_block(rec: Any, metrics: dict[str, Any]) -> ChartBlock | None:
    x, y = (metrics[a] for a in rec.pareto_axes)
    points = rec.ranked[[x.column, y.column]].dropna()
    if points.empty or (points <= 0).any().any():  # log axes need positive figures
        return None
    chart = charts.pareto_chart(rec.ranked, rec.frontier, *rec.pareto_axes).properties(width=charts.WIDTH)
    return charts.block("pareto", chart, f"Every ranked candidate (light) and the Pareto frontier (joined): no "
                                         f"candidate on it is beaten on both {x.label} ({x.better} is better) "
                                         f"and {y.label} ({y.better} is better).")
