"""The charts of a run report: from per-query records for a run measured here, from the published
summary for a run imported from MLPerf (which has no per-query records)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from reports import charts
from reports._page import ChartBlock
from runner.store import RunRecord, Store

__all__ = ["measured_charts", "imported_charts", "accuracy_chart", "per_class_accuracy"]


def _latency_marks(run: RunRecord, latency_ms: np.ndarray) -> dict[str, float]:
    """p50/p90/p99 from the stored summary (our LoadGen-convention figures) and the headline if a latency."""
    summary = run.summary or {}
    marks = {}
    for name, key, q in (("p50", "latency_p50_ms", 0.50), ("p90", "latency_p90_ms", 0.90),
                         ("p99", "latency_p99_ms", 0.99)):
        value = summary.get(key)
        marks[name] = float(value) if value is not None else float(np.quantile(latency_ms, q))
    if str(run.headline_metric or "").startswith("latency_") and run.headline_value is not None:
        marks["headline"] = float(run.headline_value)
    return marks


def measured_charts(store: Store, run: RunRecord) -> tuple[list[ChartBlock], list[str]]:
    """Latency histogram and CDF, latency over time, throughput timeline; and notes on what is absent."""
    rec = store.read_perf_samples(run.id)
    if len(rec["completed_ns"]) == 0:
        return [], ["The performance log holds no per-query records, so there are no latency or throughput charts."]
    t0 = int(rec["scheduled_ns"].min())
    latency_ms = (rec["completed_ns"] - rec["scheduled_ns"]) / 1e6
    completed_s = (rec["completed_ns"] - t0) / 1e9
    marks = _latency_marks(run, latency_ms)
    hist, hist_note = charts.latency_histogram(latency_ms, marks)
    out = [charts.block("latency_histogram", hist, " ".join(filter(None, (
               f"{len(latency_ms):,} samples, latency from each query's scheduled time to its completion.",
               hist_note)))),
           charts.block("latency_cdf", charts.latency_cdf(latency_ms, marks),
                        "Dashed lines: the summary's percentiles and the headline figure.")]
    notes = []
    if rec["query_index"].min() != rec["query_index"].max():  # more than one query
        warmup_ms = ((run.summary or {}).get("effective_settings") or {}).get("warmup_duration_ms")
        over, note = charts.latency_over_time(completed_s, latency_ms, (warmup_ms or 0) / 1e3 or None)
        warm = (f" The grey band is the {warmup_ms:g} ms warm-up, which ran before t = 0 and is not in "
                f"the performance log." if warmup_ms else " The warm-up (if any) ran before t = 0 and is not logged.")
        out.append(charts.block("latency_over_time", over, note + warm))
    else:
        notes.append("Latency over time is not drawn: the run is one query holding every sample (offline), "
                     "so each sample's latency is just its completion time; the throughput timeline shows it.")
    timeline, caption = charts.throughput_timeline(completed_s)
    out.append(charts.block("throughput", timeline, caption))
    return out, notes


def imported_charts(run: RunRecord, task_card: dict[str, Any]) -> tuple[list[ChartBlock], list[str]]:
    """Published percentiles (latency, TTFT, TPOT) as bars, early-stopping estimates as ticks."""
    summary = run.summary or {}
    percentiles = summary.get("percentiles_ns") or {}
    estimates = summary.get("early_stopping_ns") or {}
    bound_ms = _latency_bound_ms(run, task_card)
    out = []
    for i, (what, values) in enumerate(sorted(percentiles.items(), key=lambda kv: kv[0] != "latency")):
        if not values:
            continue
        in_ms = {p: v / 1e6 for p, v in values.items() if v is not None}
        est = {p: v / 1e6 for p, v in (estimates.get(what) or {}).items() if v is not None}
        chart = charts.percentile_bars(in_ms, est, bound_ms if what == "latency" else None, what)
        caption = (f"Published {what} percentiles (LoadGen summary)"
                   + ("; orange ticks: early-stopping estimates" if est else "")
                   + (f"; dashed line: the {bound_ms:g} ms latency bound" if bound_ms and what == "latency" else "")
                   + ".")
        out.append(charts.block(f"percentiles_{i}", chart, caption))
    notes = ["MLPerf publishes no per-query records, so the latency histogram, CDF, latency over time and "
             "throughput timeline cannot be drawn for this run; its published percentiles are shown instead."]
    if not out:
        notes.append("The imported summary holds no latency percentiles either.")
    return out, notes


def _latency_bound_ms(run: RunRecord, task_card: dict[str, Any]) -> float | None:
    """The server latency bound: LoadGen's effective target_latency, else the task card's constraint."""
    if run.scenario != "server":
        return None
    eff = (run.summary or {}).get("effective_settings") or {}
    target_ns = eff.get("target_latency (ns)")
    if isinstance(target_ns, (int, float)) and target_ns > 0:
        return target_ns / 1e6
    return ((task_card or {}).get("constraints") or {}).get("server_latency_bound_ms")


def per_class_accuracy(records: list[dict[str, Any]], max_classes: int = 50) -> list[tuple[str, float, int]] | None:
    """(class, accuracy, samples) per reference class when references are class labels, else None."""
    labelled = [(r["reference"], r["correct"]) for r in records if r.get("correct") is not None]
    refs = [ref for ref, _ in labelled]
    if not labelled or not all(isinstance(r, (int, str)) and not isinstance(r, bool) for r in refs):
        return None
    totals = Counter(refs)
    if not 2 <= len(totals) <= max_classes:
        return None
    hits = Counter(ref for ref, ok in labelled if ok)
    return [(f"class {c}", hits[c] / n, n) for c, n in sorted(totals.items(), key=_class_order)]


def _class_order(item: tuple[int | str, int]) -> tuple[int, int, str]:
    """Integer classes first, in numeric order, then named classes alphabetically."""
    label = item[0]
    return (0, label, "") if isinstance(label, int) else (1, 0, label)


def accuracy_chart(run: RunRecord, classes: list[tuple[str, float, int]] | None) -> ChartBlock | None:
    """The quality metric (and each class's) against the target; None when there is no figure."""
    value = run.accuracy_value
    if value is None:
        return None
    metric = run.accuracy_metric or "quality"
    total = sum(n for _, _, n in classes) if classes else None
    rows = [("whole set", float(value), total), *(classes or [])]
    target = run.accuracy_target
    caption = f"{metric} of the whole set" + (f" and of each of {len(classes)} classes" if classes else "")
    caption += (f" against the target {target:.6g} (dashed)." if target is not None else "; no target is recorded.")
    if classes:
        caption += " The target applies to the whole set; a class below it is marked, not failed."
    return charts.block("accuracy", charts.accuracy_dots(rows, target, metric), caption)
