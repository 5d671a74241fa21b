"""The load generator's own lateness: a validity condition of the load generator, not of the system.

A scenario that schedules queries (server: Poisson arrivals; multi_stream: the next query at the
previous one's completion; interactive: session arrivals and think times) counts latency from
each query's *scheduled* time, so whatever the load generator is late by is charged to the system
under test. That is right only while the load generator keeps its schedule. Each such scenario
records the issue delay (issued - scheduled, ns) of every query whose lateness is the load
generator's own (a query that waited for a busy worker is the system's queueing, not lateness)
and `lateness_figures` summarises it in the run summary:

  issue_delay_p50_us, issue_delay_p99_us, issue_delay_max_us, issue_delay_count,
  issue_delay_tolerance_us, issue_delay_within_tolerance

The tolerance is the scenario setting `lateness_tolerance_us` or, unset, 1% of the scenario's
latency bound (server: latency_bound_ms; interactive: ttft_bound_ms), or 100 us where there is
no bound on a scheduled latency (multi_stream). The p99 issue delay is held to it.

The verdict (`decide`): a run whose p99 lateness exceeds the tolerance and that failed its latency
conditions (or, in multi_stream, whose headline is that latency) while the system kept up with the load (it completed at least 90% of the target rate:
an overloaded system fails whatever the issuer does) is a load-generator limit, LOADGEN_LIMIT: the
run says nothing about the system (neither VALID nor INVALID), and its recommendation says so. A
run that met its latency conditions although the issuer was late stays VALID: the lateness was
charged to the system and it still passed (the summary records the lateness). Failures the issuer
cannot cause (minimum duration or query count) keep the run INVALID.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runner.loadgen.result import LOADGEN_LIMIT, loadgen_percentile

__all__ = ["LOADGEN_LIMIT", "BOUND_FRACTION", "UNBOUNDED_TOLERANCE_US", "KEPT_UP", "tolerance_us",
           "lateness_figures", "limit_reason", "decide"]

BOUND_FRACTION = 0.01             # default tolerance: 1% of the scenario's latency bound ...
UNBOUNDED_TOLERANCE_US = 100.0    # ... or this where no bound applies to a scheduled latency
KEPT_UP = 0.9                     # a system that completed at least this share of the target rate kept up


def tolerance_us(explicit_us: float | None, bound_ms: float | None) -> float:
    """The p99 lateness the load generator may have: the setting, else 1% of the bound, else 100 us."""
    if explicit_us is not None:
        return float(explicit_us)
    return bound_ms * 1e3 * BOUND_FRACTION if bound_ms else UNBOUNDED_TOLERANCE_US


def lateness_figures(delay_ns: np.ndarray, tolerance: float) -> dict[str, Any]:
    """The issue-delay figures of a run (µs, LoadGen's percentile convention) against `tolerance` (µs).

    `delay_ns`: issued - scheduled of the queries whose lateness is the load generator's own. No
    such query (every query waited for a busy worker): the figures are None and the run is taken
    as on time (there was no schedule the load generator could miss).
    """
    d = np.sort(np.asarray(delay_ns, dtype=np.int64))
    if len(d) == 0:
        return {"issue_delay_p50_us": None, "issue_delay_p99_us": None, "issue_delay_max_us": None,
                "issue_delay_count": 0, "issue_delay_tolerance_us": tolerance, "issue_delay_within_tolerance": True}
    p99 = float(loadgen_percentile(d, 99.0)) / 1e3
    return {"issue_delay_p50_us": float(np.median(d)) / 1e3, "issue_delay_p99_us": p99,
            "issue_delay_max_us": float(d[-1]) / 1e3, "issue_delay_count": int(len(d)),
            "issue_delay_tolerance_us": tolerance, "issue_delay_within_tolerance": p99 <= tolerance}


def limit_reason(summary: dict[str, Any]) -> str:
    """The load-generator-limit reason, with the numbers."""
    return (f"load generator could not keep the schedule: issued late by p99 {_us(summary['issue_delay_p99_us'])} "
            f"> tolerance {_us(summary['issue_delay_tolerance_us'])} (p50 {_us(summary['issue_delay_p50_us'])}, "
            f"max {_us(summary['issue_delay_max_us'])}, over {summary['issue_delay_count']:,} queries)"
            + (f", issued by {summary['issuer']}" if summary.get("issuer") else ""))


def _advice(summary: dict[str, Any]) -> str:
    load, cpus = summary.get("machine_load_1m"), summary.get("machine_cpus")
    busy = load is not None and cpus and load > cpus
    return ("this run is a load-generator limit, not a verdict on the system: its latency failure may be the "
            "issuer's own lateness; "
            + (f"the machine was busy (load average {load:.3g} on {cpus} CPUs: other processes took the issuer's "
               f"CPU), so rerun on a quieter machine" if busy else
               "rerun with the issuer on a CPU of its own (--cpus with 3 or more CPUs, or --set "
               "isolation=dedicated), fewer backend threads, or on a quieter machine")
            + (f" (the system itself took {summary['service_latency_p50_ms']:.4g} ms per query, median)"
               if summary.get("service_latency_p50_ms") is not None else ""))


def decide(summary: dict[str, Any], reasons: list[str], latency_failed: bool, advice: str | None,
           headline_is_latency: bool = False) -> tuple[str, list[str], str | None]:
    """(validity, reasons, recommendation) of a run given its own verdict and its issuer's lateness.

    `reasons` and `advice` are the scenario's own verdict (empty reasons: VALID); `latency_failed`
    whether a latency condition (a bound, or early stopping with over-bound queries) is among them.
    `headline_is_latency`: the run's headline is the scheduled latency itself (multi_stream's p99),
    so a late load generator inflates it whatever the verdict: a VALID run is then a limit too.
    `summary` holds the `lateness_figures` and, for a scenario with a target rate, `achieved_qps`
    and `target_qps`.
    """
    late = not summary.get("issue_delay_within_tolerance", True)
    if late and headline_is_latency and not reasons:
        return LOADGEN_LIMIT, [limit_reason(summary)], _advice(summary)
    if not reasons:
        return "VALID", reasons, advice
    if not (late and latency_failed and _kept_up(summary)):
        return "INVALID", reasons, advice
    return LOADGEN_LIMIT, [limit_reason(summary), *reasons], _advice(summary)


def _kept_up(summary: dict[str, Any]) -> bool:
    target, achieved = summary.get("target_qps"), summary.get("achieved_qps")
    return target is None or achieved is None or achieved >= KEPT_UP * target


def _us(value: float | None) -> str:
    """A duration in µs, in us below a millisecond and in ms from there."""
    if value is None:
        return "-"
    return f"{value:.3g} us" if value < 1_000 else f"{value / 1_000:,.3g} ms"
