"""The run report: one self-contained HTML file for one stored run.

It holds the four cards, the settings and seeds, validity with its reasons, the completeness
check (four cards and two logs), the headline metric, latency and throughput charts (from the
per-query records of a run measured here, from the published percentiles of an imported MLPerf
run) and the accuracy against its target. The headline's confidence interval comes from the
statistics layer once it exists; until then the report says so instead of showing one.
"""

from __future__ import annotations

import json
from typing import Any

from reports._page import ChartBlock, render_page
from reports._run_charts import accuracy_chart, imported_charts, measured_charts, per_class_accuracy
from reports.badges import format_headline
from runner.store import RunRecord, Store
from runner.validate import CARD_MODELS, check_run, why_non_compliant

__all__ = ["render_run_report", "run_report_context", "flatten"]

_SEED = "seed"
_SUMMARY_SKIP = {"effective_settings", "test_parameters", "mlperf_summary", "percentiles_ns", "early_stopping_ns",
                 "accuracy", "accuracy_bounds", "ci"}


def render_run_report(store: Store, run_id: int | str) -> str:
    """The run report of a stored run (id, uuid or uuid prefix) as one HTML document."""
    context, chart_list = run_report_context(store, run_id)
    return render_page("run.html.j2", context, chart_list)


def run_report_context(store: Store, run_id: int | str,
                       charts: bool = True) -> tuple[dict[str, Any], list[ChartBlock]]:
    """Everything the run template shows (`card_data`: the four cards as stored), and its charts (kept
    apart for other reports to reuse; none when not `charts`, which spares reading the per-query log)."""
    run = store.get_run(run_id)
    imported = store.get_imported(run.id) if run.provenance == "imported" else None
    cards = {kind: _load_card(store, run, kind) for kind in CARD_MODELS}
    records = store.read_accuracy_samples(run.id) if imported is None else []
    classes = per_class_accuracy(records) if imported is None else None
    chart_list, chart_notes = _charts(store, run, cards, imported, classes) if charts else ([], [])
    context = dict(
        run=run, imported=imported, title=_title(run), system_name=(cards["system"] or {}).get("system_name"),
        headline=_headline(run), headline_ci=headline_ci(store, run), validity=_validity(run, imported),
        completeness=check_run(store, run.id), accuracy=_accuracy(run, imported, records, classes),
        summary_rows=_summary_rows(run), settings_rows=_settings_rows(run, seeds=False),
        seed_rows=_settings_rows(run, seeds=True), provenance_rows=_provenance_rows(run, imported),
        cards=[_card_table(kind, run.card_hashes.get(kind), cards[kind]) for kind in CARD_MODELS],
        card_data=cards, chart_notes=chart_notes)
    return context, chart_list


def _charts(store: Store, run: RunRecord, cards: dict[str, Any], imported: dict[str, Any] | None,
            classes: Any) -> tuple[list[ChartBlock], list[str]]:
    """The run's charts (from its per-query log, or what an imported result publishes) and their notes."""
    if imported is None:
        chart_list, chart_notes = measured_charts(store, run)
    else:
        chart_list, chart_notes = imported_charts(run, cards["task"] or {})
    acc = accuracy_chart(run, classes)
    if acc is not None:
        chart_list.append(acc)
    return chart_list, chart_notes


def headline_ci(store: Store, run: RunRecord) -> dict[str, Any] | None:
    """The headline's confidence interval ({low, high, level, method, note}) from the statistics layer
    (analysis.views.analyze_run: stored with the run, or computed from its per-query log on read);
    None when there is none (an imported result, or a headline that is a setting such as server's
    target QPS), and the report says so rather than inventing one."""
    from analysis.views import analyze_run
    from runner.errors import InfersightError

    if run.provenance != "measured":
        return None
    try:
        ci = analyze_run(store, run.id).get("headline_ci")
    except InfersightError:
        return None
    if not ci or ci.get("low") is None or ci.get("high") is None:
        return None
    return {"low": ci["low"], "high": ci["high"], "level": ci["confidence"], "method": ci["method"],
            "note": ci.get("note")}


def _load_card(store: Store, run: RunRecord, kind: str) -> dict[str, Any] | None:
    digest = run.card_hashes.get(kind)
    if not digest:
        return None
    try:
        return store.get_card(kind, digest)
    except KeyError:
        return None


def _title(run: RunRecord) -> str:
    return f"Run {run.id}: {run.task_name} {run.model_variant} / {run.backend_name} / {run.scenario}"


def _headline(run: RunRecord) -> dict[str, Any]:
    summary = run.summary or {}
    metric = run.headline_metric or ""
    if metric.startswith("latency_") and "early_stopping_estimate_ms" in summary:
        pct = (summary.get("effective_settings") or {}).get("target_latency_percentile", 90)
        how = (f"MLPerf's early-stopping estimate of the p{pct:g} latency (the plain percentile of the "
               f"samples is {summary.get(metric, 'not recorded')} ms)")
    elif run.provenance == "imported":
        source, field = summary.get("headline_source", "the LoadGen summary"), summary.get("headline_field", metric)
        how = f"published in {source} as {field}"
    else:
        how = "measured over the timed run"
    return dict(metric=metric or "-", text=format_headline(run), units=run.headline_units or "", how=how)


def _validity(run: RunRecord, imported: dict[str, Any] | None) -> dict[str, Any]:
    return dict(verdict=run.validity or "no verdict", reasons=list(run.validity_reasons or []),
                compliant=bool(run.compliant), why_non_compliant=why_non_compliant(run, imported),
                status=run.status, error=run.error, lateness=_lateness(run.summary or {}),
                recommendation=(run.summary or {}).get("recommendation"))


def _lateness(summary: dict[str, Any]) -> str | None:
    """The load generator's own lateness against its tolerance (runner.loadgen.lateness), in words."""
    if summary.get("issue_delay_p99_us") is None:
        return None
    us = lambda v: f"{v:.3g} us" if v < 1_000 else f"{v / 1_000:,.3g} ms"  # noqa: E731
    kept = ("within" if summary.get("issue_delay_within_tolerance", True) else "above")
    return (f"The load generator issued queries late by p50 {us(summary['issue_delay_p50_us'])}, p99 "
            f"{us(summary['issue_delay_p99_us'])} ({summary.get('issue_delay_count', 0):,} queries), {kept} its "
            f"tolerance of {us(summary['issue_delay_tolerance_us'])}"
            + (f"; issued by {summary['issuer']}" if summary.get("issuer") else "") + ".")


def _accuracy(run: RunRecord, imported: dict[str, Any] | None, records: list[dict[str, Any]],
              classes: list[tuple[str, float, int]] | None) -> dict[str, Any]:
    summary = run.summary or {}
    bounds = summary.get("accuracy_bounds") or {}
    figures = [(name, value, *(bounds.get(name) or (None, None)))
               for name, value in (summary.get("accuracy") or {}).items()]
    verdict = {True: "meets the target", False: "FAILS the target"}.get(run.accuracy_passed, "cannot be checked")
    return dict(metric=run.accuracy_metric, value=run.accuracy_value, target=run.accuracy_target,
                passed=run.accuracy_passed, verdict=verdict, samples=len(records), classes=classes or [],
                figures=figures, text=(imported or {}).get("accuracy_text"))


def _summary_rows(run: RunRecord) -> list[tuple[str, Any]]:
    summary = {k: v for k, v in (run.summary or {}).items() if k not in _SUMMARY_SKIP}
    rows = flatten(summary)
    published = (run.summary or {}).get("mlperf_summary")
    if published:
        rows += [(f"published: {k}", v) for k, v in flatten(published)]
    return rows


def _settings_rows(run: RunRecord, seeds: bool) -> list[tuple[str, Any]]:
    """Effective scenario settings (as resolved for the run), the backend's settings, the load generator;
    seeds apart (one per random dimension)."""
    summary = run.summary or {}
    settings = run.settings or {}
    effective = summary.get("effective_settings") or settings.get("scenario") or {}
    rows = [(f"scenario: {k}", v) for k, v in flatten(effective)]
    rows += [(f"backend: {k}", v) for k, v in flatten(settings.get("backend") or {})]
    rows += [(k, v) for k, v in flatten({k: v for k, v in settings.items() if k not in ("scenario", "backend")})]
    return [(k, v) for k, v in rows if (_SEED in k.lower()) == seeds]


def _provenance_rows(run: RunRecord, imported: dict[str, Any] | None) -> list[tuple[str, Any]]:
    rows = [("run id", run.id), ("uuid", run.uuid), ("label", run.label),
            ("provenance", run.provenance), ("source", run.source), ("host", run.hostname),
            ("started", run.started_at), ("finished", run.finished_at)]
    if imported is not None:
        skip = {"run_id", "accuracy_text"}
        rows += [(f"imported: {k}", v) for k, v in flatten({k: v for k, v in imported.items() if k not in skip})]
    return rows


def _card_table(kind: str, digest: str | None, card: dict[str, Any] | None) -> dict[str, Any]:
    if card is None:
        return dict(kind=kind, hash=digest, rows=[], omitted=0, missing=True)
    rows = flatten(card)
    kept = [(k, v) for k, v in rows if v not in ("", None, [], {})]
    return dict(kind=kind, hash=digest, rows=kept, omitted=len(rows) - len(kept), missing=False)


def flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, value) rows in key order; lists of scalars stay lists, lists of
    dicts become compact JSON (a table cell per field would drown the reader)."""
    if not isinstance(data, dict):
        return [(prefix, data)]
    rows: list[tuple[str, Any]] = []
    for key in sorted(data, key=str):
        name = f"{prefix}.{key}" if prefix else str(key)
        value = data[key]
        if isinstance(value, dict) and value:
            rows += flatten(value, name)
        elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
            rows.append((name, json.dumps(value, separators=(", ", ": "), default=str)))
        else:
            rows.append((name, value))
    return rows
