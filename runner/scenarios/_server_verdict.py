"""The server scenario's verdict: its summary figures from the per-query records, VALID/INVALID with the
numbers, what to do about a failed run, and whether the load generator's own lateness decides it
(runner.loadgen.lateness: then the run is a load-generator limit, not a verdict on the system)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from runner.loadgen import early_stopping, lateness
from runner.loadgen.result import latency_summary, loadgen_percentile

if TYPE_CHECKING:
    from runner.scenarios.server import ServerSettings

__all__ = ["server_summary", "server_verdict", "lateness_verdict", "tolerance_us"]


def server_summary(rec: dict[str, np.ndarray], start: int, scheduled: int, s: ServerSettings,
                   begun_ns: np.ndarray | None = None, late_ns: np.ndarray | None = None) -> dict[str, Any]:
    """Latency, SLA and rate figures of a server run from its per-query records (ns timestamps).

    `start` is the schedule's origin and `scheduled` the number of queries the schedule held.
    `begun_ns`: when a worker started each query (default: its issue time); the queueing delay
    runs from the scheduled time to it, the issue delay (the issuer's own lateness) to the issue.
    `late_ns`: the issue delays that are the load generator's own (default: every query's issued -
    scheduled), summarised by runner.loadgen.lateness against the settings' tolerance.
    Percentiles follow LoadGen's convention (runner.loadgen.result.loadgen_percentile).
    """
    lat = rec["completed_ns"] - rec["scheduled_ns"]
    n, bound_ns = len(lat), int(s.latency_bound_ms * 1e6)
    over = int(np.count_nonzero(lat > bound_ns))
    p = s.target_latency_percentile / 100
    needed = early_stopping.min_queries(over, p, s.early_stopping_tolerance, s.early_stopping_confidence)
    out: dict[str, Any] = {"query_count": n, "sample_count": n, "scheduled_query_count": scheduled,
                           "target_qps": s.target_qps, "latency_bound_ms": s.latency_bound_ms,
                           "over_bound_count": over, "within_bound_fraction": (n - over) / n if n else None,
                           "early_stopping_min_queries": needed, "early_stopping_passed": n >= needed,
                           **latency_summary(lat)}
    if n == 0:
        return {**out, "duration_ns": 0, "scheduled_duration_ns": 0, "samples_per_second": 0.0}
    last_sched = int(rec["scheduled_ns"].max())
    span = max(int(rec["completed_ns"].max()) - start, 1)
    begun = rec["issued_ns"] if begun_ns is None else begun_ns
    queueing = np.sort(begun - rec["scheduled_ns"])
    out.update(duration_ns=span, scheduled_duration_ns=last_sched - start,
               target_percentile_latency_ms=float(loadgen_percentile(np.sort(lat), s.target_latency_percentile)) / 1e6,
               achieved_qps=n * 1e9 / span, samples_per_second=n * 1e9 / span,
               scheduled_qps=n * 1e9 / max(last_sched - start, 1),
               issue_rate_qps=n * 1e9 / max(int(rec["issued_ns"].max()) - start, 1),
               queueing_delay_mean_ms=float(queueing.mean()) / 1e6,
               queueing_delay_p99_ms=float(loadgen_percentile(queueing, 99.0)) / 1e6,
               service_latency_p50_ms=float(np.median(rec["completed_ns"] - begun)) / 1e6)
    out["issue_rate_ratio"] = out["issue_rate_qps"] / s.target_qps
    late = rec["issued_ns"] - rec["scheduled_ns"] if late_ns is None else late_ns
    out.update(lateness.lateness_figures(late, tolerance_us(s)))
    return out


def tolerance_us(s: ServerSettings) -> float:
    """The p99 lateness the issuer may have in this run (µs): the setting, else 1% of the latency bound."""
    return lateness.tolerance_us(s.lateness_tolerance_us, s.latency_bound_ms)


def lateness_verdict(summary: dict[str, Any], s: ServerSettings,
                     stopped: str | None) -> tuple[str, list[str], str | None]:
    """(validity, reasons, recommendation): the scenario's verdict, then whether the issuer's lateness decides it."""
    reasons, advice = server_verdict(summary, s, stopped)
    # a system that alone (median, from its start of the query) takes longer than the bound fails however
    # late the issue: only a latency failure it could have passed is the issuer's to decide
    latency_failed = summary["query_count"] > 0 and summary["service_latency_p50_ms"] <= s.latency_bound_ms and (
        summary["target_percentile_latency_ms"] > s.latency_bound_ms
        or (summary["over_bound_count"] > 0 and summary["query_count"] < summary["early_stopping_min_queries"]))
    return lateness.decide(summary, reasons, latency_failed, advice)


def server_verdict(summary: dict[str, Any], s: ServerSettings, stopped: str | None) -> tuple[list[str], str | None]:
    """Why a server run is INVALID (each reason with its numbers; empty when VALID) and what to do.

    Conditions (LoadGen's): target-percentile latency within the bound, early stopping passed
    for the over-bound count, min duration (on the last query's scheduled time), min queries.
    """
    n, over, needed = summary["query_count"], summary["over_bound_count"], summary["early_stopping_min_queries"]
    pct, bound = f"p{s.target_latency_percentile:g}", s.latency_bound_ms
    if n == 0:
        return [stopped or "no query completed"], None
    reasons: list[str] = []
    latency_missed = summary["target_percentile_latency_ms"] > bound
    advice = _advice(summary, s) if latency_missed or n < needed else None
    over_text = f"{over:,} of {n:,} queries ({over / n:.2%}) over the bound"
    if latency_missed:
        reasons.append(f"{pct} latency {summary['target_percentile_latency_ms']:.4g} ms > bound {bound:g} ms: "
                       f"{over_text}; {advice}")
    if n < needed:
        reasons.append(f"early stopping needs at least {needed:,} queries with {over:,} over the bound for a "
                       f"{pct} claim at {s.early_stopping_confidence:.0%} confidence (tolerance "
                       f"{s.early_stopping_tolerance:g}); the run completed {n:,}"
                       + ("" if reasons else f" ({over_text}); {advice}"))
    if stopped:
        return [*reasons, stopped], advice
    if summary["scheduled_duration_ns"] < s.min_duration_ms * 1_000_000:
        reasons.append(f"min duration not met: the last query was scheduled at "
                       f"{summary['scheduled_duration_ns'] / 1e9:.3f} s < min_duration_ms {s.min_duration_ms} ms "
                       f"(the schedule was cut by max_query_count or max_duration_ms)")
    if n < s.min_query_count:
        reasons.append(f"min query count not met: {n:,} queries < min_query_count {s.min_query_count:,}")
    return reasons, advice


def _advice(summary: dict[str, Any], s: ServerSettings) -> str:
    """What to do about a run that missed its latency target, or had too few queries to prove it."""
    if summary["service_latency_p50_ms"] > s.latency_bound_ms:
        return (f"the system alone takes {summary['service_latency_p50_ms']:.4g} ms per query (median, without "
                f"queueing) > bound {s.latency_bound_ms:g} ms, so a lower target QPS will not help: raise "
                f"latency_bound_ms or use a faster configuration")
    if summary["target_percentile_latency_ms"] <= s.latency_bound_ms:
        needed = summary["early_stopping_min_queries"]
        return f"run longer: set min_query_count >= {needed:,} (or a longer min_duration_ms)"
    achieved = summary["achieved_qps"]
    suggest = 0.9 * min(achieved, s.target_qps)
    return (f"lower target QPS to ~{_round(suggest)} (90% of the {achieved:,.0f} queries/s the system completed "
            f"against a target of {s.target_qps:,.6g})")


def _round(qps: float) -> str:
    """A QPS rounded to 3 significant figures, written plainly (1,230 not 1.23e+03)."""
    value = float(f"{qps:.3g}")
    return f"{value:,.0f}" if value >= 100 else f"{value:g}"
