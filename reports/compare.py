"""The comparison report: two or more configurations (runs, or `config:KEY` for every run of one
configuration) side by side, in one self-contained HTML file.

Every figure, verdict and sentence comes from `analysis.services.compare`, the function behind
`infersight compare` and the app's Compare page: the first reference is the baseline; each other one gets the ratio of geometric means
(Welch t interval on log figures) and of medians (percentile bootstrap), Welch's and Mann-Whitney's
tests, a TOST equivalence test against the margin, a Benjamini-Hochberg q-value and a verdict
(equivalent, different: better or worse, inconclusive) with each side's geometric mean and the tests
in words. The report adds the configurations' cards
at a glance, the figures compared, and the per-query latency CDFs of their measured runs overlaid
(`reports.charts.latency_cdfs`; runs imported from MLPerf have no per-query records).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from analysis import load, services
from analysis.samples import query_latencies
from analysis.services import ComparisonSide, CompareRequest, ComparisonResult, SideComparison
from analysis.settings import distinguishing
from reports import charts
from reports._page import ChartBlock, render_page
from reports.badges import format_headline
from runner.bundles import bundled_from
from runner.store import RunRecord, Store

__all__ = ["render_compare_report", "compare_report_context", "side_letters"]

_VERDICT_COLOURS = {"equivalent": charts.ACCENT, "better": "#2e7d32", "worse": "#c62828",
                    "inconclusive": charts.MARK}


def render_compare_report(store: Store, refs: Sequence[str], *, metric: str | None = None, margin: float = 0.02,
                          confidence: float = 0.95, force: bool = False, note: str = "") -> str:
    """The comparison report of `refs` (baseline first; run ids, uuid prefixes or config:KEY) as HTML.

    Raises AnalysisError (exit 2 on the CLI) as `infersight compare` does: fewer than two references,
    runs whose task version or model differ (unless `force`), too few figures to compare.
    """
    context, chart_list = compare_report_context(store, refs, metric=metric, margin=margin, confidence=confidence,
                                                 force=force, note=note)
    return render_page("compare.html.j2", context, chart_list)


def side_letters(count: int) -> list[str]:
    """Short names for the configurations compared: A (the baseline), B, C, ... then A2, B2, ..."""
    letters = string.ascii_uppercase
    return [letters[i % 26] + (str(i // 26 + 1) if i >= 26 else "") for i in range(count)]


def compare_report_context(store: Store, refs: Sequence[str], *, metric: str | None = None, margin: float = 0.02,
                           confidence: float = 0.95, force: bool = False,
                           note: str = "") -> tuple[dict[str, Any], list[ChartBlock]]:
    """Everything the comparison template shows, and its charts."""
    request = CompareRequest.parse(refs=tuple(refs), metric=metric, margin=margin, confidence=confidence, force=force)
    result = services.compare(request, store)
    letters = side_letters(len(refs))
    raw = [result.baseline, *result.comparisons]
    sides = _named(store, [_side(store, letter, entry, result.metric) for letter, entry in zip(letters, raw)])
    rows = [_comparison_row(side, c) for side, c in zip(sides[1:], result.comparisons)]
    chart_list = [charts.block("ratios", ratio_chart(rows, margin),
                               f"Ratio of geometric means, each configuration over the baseline A, with its "
                               f"{confidence:.0%} interval; the grey band is the equivalence margin "
                               f"1 +- {margin:.1%}."),
                  charts.block("figures", figures_chart(sides, result.metric),
                               "Each dot is one figure compared: a run's "
                               + ("figure." if result.unit == "runs" else
                                  "figure over one contiguous batch of its queries (fewer than 2 runs a side).")),
                  ]
    cdf, cdf_note = _cdf_block(store, sides)
    if cdf is not None:
        chart_list.append(cdf)
    context = dict(title=_title(sides), result=result, sides=sides, rows=rows, note=note, cdf_note=cdf_note,
                   direction="lower" if result.lower_is_better else "higher", summary=_summary(rows, result))
    return context, chart_list


def _named(store: Store, sides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each side's distinguishing settings (analysis.settings), added to the labels of sides that would
    otherwise read alike ('digits int8 / openvino / offline' twice names its performance hint)."""
    texts = distinguishing([s["runs"][0] for s in sides])
    plain = [s["label"].split(": ", 1)[1] for s in sides]
    for side, text, name in zip(sides, texts, plain):
        side["settings"] = text
        if plain.count(name) > 1 and text != "-":
            side["label"] += f" ({text})"
    return sides


def _side(store: Store, letter: str, entry: ComparisonSide, metric: str) -> dict[str, Any]:
    """One configuration: what it is (from its first run's cards), its runs and the figures compared."""
    runs = [store.get_run(run_id) for run_id in entry.runs]
    first = runs[0]
    try:
        system = load.system_label(store.get_card("system", first.system_hash))
    except KeyError:
        system = f"system {first.system_hash[:12]}"
    imported = store.get_imported(first.id) if first.provenance == "imported" else None
    if imported:
        system = imported.get("system_name") or system
    values = entry.values
    what = f"{first.task_name} {first.model_variant} / {first.backend_name} / {first.scenario}"
    return dict(letter=letter, ref=entry.ref, runs=runs, run_ids=list(entry.runs), system=system, what=what,
                label=f"{letter}: {system} / {first.backend_name} / {first.model_variant}",
                config_key=load.config_key(first), values=list(values), n=len(values),
                gmean=entry.geometric_mean, low=min(values), high=max(values),
                validity=", ".join(sorted({str(r.validity or "no verdict") for r in runs})),
                headlines=[format_headline(r) for r in runs[:6]],
                labels=sorted({str(r.label) for r in runs if r.label}),
                provenance=_provenance(first, imported), metric=metric)


def _provenance(run: RunRecord, imported: dict[str, Any] | None) -> str:
    if imported:
        return (f"MLPerf Inference {imported.get('round', '')} {imported.get('division', '')}, "
                f"submitter {imported.get('submitter', '?')}").replace("  ", " ")
    bundle = bundled_from(run)
    return f"measured on {run.hostname or '?'}" + (f" ({bundle})" if bundle else "")


def _comparison_row(side: dict[str, Any], c: SideComparison) -> dict[str, Any]:
    """One configuration against the baseline: the record's figures, its change in words."""
    gm = c.ratio_geometric_means
    change = gm["estimate"] - 1
    words = (f"{side['letter']} is {abs(change):.1%} {'above' if change > 0 else 'below'} A "
             f"[{gm['low'] - 1:+.1%}, {gm['high'] - 1:+.1%}]")
    return dict(side=side, comparison=c, gm=gm, md=c.ratio_medians, verdict=c.outcome, words=words,
                welch_p=c.welch_p, mann_whitney_p=c.mann_whitney_p, tost_p=c.tost_p, q_value=c.q_value, n_b=c.n_b,
                n_a=c.n_a)


def _summary(rows: list[dict[str, Any]], result: ComparisonResult) -> list[str]:
    """One paragraph per configuration: its change against the baseline, the verdict and the tests in the
    record's words (the same sentences as `infersight compare` and the app's Compare page)."""
    return [f"{row['words']} in {result.metric}: {row['comparison'].verdict_text}. "
            f"Difference: {row['comparison'].significance}. Equivalence: {row['comparison'].equivalence}."
            + (" Neither shown: more runs are needed." if row["verdict"] == "inconclusive" else "")
            for row in rows]


def _title(sides: list[dict[str, Any]]) -> str:
    first = sides[0]
    return f"Comparison of {len(sides)} configurations: {first['what'].split(' / ')[0]}, {first['metric']}"


def ratio_chart(rows: list[dict[str, Any]], margin: float) -> alt.LayerChart:
    """Ratios to the baseline with their intervals (a forest plot), coloured by verdict, against the
    equivalence band 1/(1 + margin) .. 1 + margin and the line of no change."""
    data = pd.DataFrame({"configuration": [r["side"]["label"] for r in rows],
                         "ratio": [r["gm"]["estimate"] for r in rows], "low": [r["gm"]["low"] for r in rows],
                         "high": [r["gm"]["high"] for r in rows], "verdict": [r["verdict"] for r in rows]})
    y = alt.Y("configuration:N", title=None, sort=list(data["configuration"]), axis=alt.Axis(labelLimit=260))
    x = alt.X("ratio:Q", title="ratio to the baseline A (geometric means)", scale=alt.Scale(zero=False))
    scale = alt.Scale(domain=list(_VERDICT_COLOURS), range=list(_VERDICT_COLOURS.values()))
    colour = alt.Color("verdict:N", scale=scale, legend=alt.Legend(orient="bottom", title=None))
    band = alt.Chart(pd.DataFrame({"lo": [1 / (1 + margin)], "hi": [1 + margin]})).mark_rect(
        color="#d9d9d9", opacity=0.6).encode(x="lo:Q", x2="hi:Q")
    one = alt.Chart(pd.DataFrame({"one": [1.0]})).mark_rule(color=charts.MARK, strokeDash=[4, 3]).encode(x="one:Q")
    bars = alt.Chart(data).mark_rule(strokeWidth=2).encode(x=alt.X("low:Q"), x2="high:Q", y=y, color=colour)
    dots = alt.Chart(data).mark_point(filled=True, size=80).encode(
        x=x, y=y, color=colour, tooltip=["configuration:N", alt.Tooltip("ratio:Q", format=".4f"),
                                         alt.Tooltip("low:Q", format=".4f"), alt.Tooltip("high:Q", format=".4f"),
                                         "verdict:N"])
    return alt.layer(band, one, bars, dots).properties(width=charts.WIDTH - 200, height=max(60, 34 * len(rows)))


def figures_chart(sides: list[dict[str, Any]], metric: str) -> alt.Chart:
    """The figures compared, one dot each, one row per configuration (log axis when they span 10x)."""
    data = pd.DataFrame([{"configuration": s["label"], "value": v} for s in sides for v in s["values"]])
    values = data["value"].to_numpy()
    log = bool(values.min() > 0 and values.max() > 10 * values.min())
    return alt.Chart(data).mark_circle(size=40, opacity=0.6, color=charts.ACCENT).encode(
        x=alt.X("value:Q", title=f"{metric}{' (log scale)' if log else ''}",
                scale=alt.Scale(type="log") if log else alt.Scale(zero=False)),
        y=alt.Y("configuration:N", title=None, sort=[s["label"] for s in sides], axis=alt.Axis(labelLimit=260)),
        tooltip=["configuration:N", alt.Tooltip("value:Q", format=".5g")],
    ).properties(width=charts.WIDTH - 200, height=max(60, 34 * len(sides)))


def _cdf_block(store: Store, sides: list[dict[str, Any]]) -> tuple[ChartBlock | None, str]:
    """Latency CDFs of every configuration with per-query records (its measured runs pooled)."""
    series, without = {}, []
    for side in sides:
        parts = [query_latencies(rec) / 1e6 for rec in (load.run_records(store, run) for run in side["runs"])
                 if rec is not None]
        if parts:
            series[side["label"]] = np.concatenate(parts)
        else:
            without.append(side["letter"])
    note = (f"No per-query records for {', '.join(without)} (imported MLPerf results publish none), so "
            f"{'they are' if len(without) > 1 else 'it is'} not drawn." if without else "")
    if not series:
        return None, note
    counts = ", ".join(f"{label.split(':')[0]} {len(v):,}" for label, v in series.items())
    caption = (f"Latency of each query from its scheduled time to its completion, every measured run of a "
               f"configuration pooled (queries: {counts}).")
    return charts.block("latency_cdfs", charts.latency_cdfs(series), caption), note
