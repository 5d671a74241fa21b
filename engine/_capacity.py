"""Capacity of a Server configuration measured here: from its peak search, not from the QPS it was tested at.

A Server run's throughput is the target QPS it met the latency bound at, so runs of one configuration
at 1,000, 20,000 and 33,692 QPS are one configuration, not three. `capacity_runs(store, runs)` groups
the VALID Server runs measured here by configuration without the target QPS, and keeps for each the
runs that say what it can serve:

- a completed peak search (`infersight peak`) among its runs: the probes
  at the search's peak QPS, the capacity being that peak with P(VALID) there and at the next QPS tried;
- otherwise the runs at the highest target QPS that was VALID: a lower bound of the capacity (the
  system may serve more), marked as such with a hint to run a peak search.

Every other run (imported MLPerf results, other scenarios) passes through unchanged: an MLPerf Server
figure is already the submitter's VALID QPS.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

from analysis.load import config_key
from runner.store import RunRecord, Store
from runner.store.records import PeakSearchRecord
from runner.store.searches import SearchLog

__all__ = ["capacity_runs", "PEAK", "LOWER_BOUND"]

PEAK, LOWER_BOUND = "peak search", "lower bound"


def capacity_runs(store: Store, runs: list[RunRecord]) -> list[tuple[RunRecord, str, str]]:
    """(run, configuration key, capacity basis) of the runs the candidates use (see the module doc); the basis
    is '' for runs other than measured Server runs."""
    out, groups = [], defaultdict(list)
    for run in runs:
        if run.scenario == "server" and run.provenance != "imported":
            groups[_key_without_qps(run)].append(run)
        else:
            out.append((run, "", ""))
    searches = _Searches(store)
    for key, group in groups.items():
        chosen, basis = _choose(group, searches)
        out += [(run, key, basis) for run in chosen]
    return out


def _key_without_qps(run: RunRecord) -> str:
    """The configuration key of a run as if it had no target QPS."""
    settings = copy.deepcopy(run.settings or {})
    (settings.get("scenario") or {}).pop("target_qps", None)
    return config_key(run.model_copy(update={"settings": settings}))


def target_qps(run: RunRecord) -> float:
    """The target QPS a Server run was asked for (its headline where the settings do not say)."""
    value = (((run.settings or {}).get("scenario") or {}).get("target_qps"))
    return float(value if isinstance(value, (int, float)) else run.headline_value or 0.0)


class _Searches:
    """Peak searches by id, read once."""

    def __init__(self, store: Store) -> None:
        self.log, self.found = SearchLog(store), {}

    def get(self, search_id: int) -> PeakSearchRecord | None:
        if search_id not in self.found:
            try:
                self.found[search_id] = self.log.get(search_id)
            except KeyError:
                self.found[search_id] = None
        return self.found[search_id]


def _choose(group: list[RunRecord], searches: _Searches) -> tuple[list[RunRecord], str]:
    """The runs of one configuration its capacity comes from, and the basis as one line."""
    done = [s for s in (searches.get(r.search_id) for r in group if r.search_id) if s is not None
            and s.status == "complete" and (s.result or {}).get("peak_qps")]
    if done:
        search = max(done, key=lambda s: s.id)
        peak = float(search.result["peak_qps"])
        at_peak = [r for r in group if r.search_id == search.id and abs(target_qps(r) - peak) < 1e-9 * peak]
        if at_peak:
            return at_peak, f"{PEAK} {search.id}: {_edge(search.result, peak)}"
    top = max(target_qps(r) for r in group)
    chosen = [r for r in group if target_qps(r) == top]
    return chosen, (f"{LOWER_BOUND}: VALID at {top:,.6g} QPS, the highest tested; it may serve more "
                    f"(run `infersight peak TASK` for its peak)")


def _edge(result: dict[str, Any], peak: float) -> str:
    """'P(VALID) 1.00 at 33,692 QPS, 0.33 at 34,500 QPS' from a search's P(VALID) table."""
    table = sorted(result.get("table") or [], key=lambda r: r["target_qps"])
    parts = [f"P(VALID) {r['p_valid']:.2f} at {r['target_qps']:,.6g} QPS" for r in table
             if r["target_qps"] == peak]
    above = [r for r in table if r["target_qps"] > peak]
    if above:
        parts.append(f"{above[0]['p_valid']:.2f} at {above[0]['target_qps']:,.6g} QPS")
    return ", ".join(parts) or f"peak {peak:,.6g} QPS"
