"""Peak-QPS search for the server scenario: the highest target QPS that stays VALID, and P(VALID).

Near its knee a system flips between VALID and INVALID from run to run at the same target QPS;
the search measures that instead of hiding it. Algorithm:

1. Bracket: probe the start QPS (the task card's target, or --start-qps). While VALID, double
   it (the first step jumps straight to the warm-up's throughput estimate when that is higher)
   until a probe is INVALID; while INVALID, halve it until one is VALID. Bounded by min/max QPS.
2. Bisect the bracket [highest VALID, lowest INVALID]: geometric midpoints while the bracket
   spans more than a factor of 2, arithmetic ones after, until (hi - lo) / lo <= tolerance.
   Near the edge (bracket narrower than `edge_width`) a QPS is probed up to `repeats_near_edge`
   times and counts as VALID when P(VALID) = valid / runs >= `valid_threshold` (stopping early
   once the outcome is decided); far from it one run decides.
3. Confirm: the final lower end is topped up to `repeats_near_edge` runs; if it misses the
   threshold the bracket moves below it and the search goes on.

A probe whose load generator could not keep the schedule (validity LOADGEN_LIMIT, runner.loadgen.lateness)
says nothing about the system: it is inconclusive, counts neither as VALID nor as INVALID, and is
repeated at the same QPS up to `inconclusive_retries` times; if every repeat is inconclusive too,
the search stops there and its note says why (never taking it for the system's limit).

The peak is the highest QPS tried with at least `repeats_near_edge` runs and P(VALID) >= the
threshold. Every probe is an ordinary stored run (runner.run.prepare_run / execute_run) with
runs.search_id pointing at the search row (runner.store.searches), which holds the status
and the result: probes, the P(VALID) table, the peak and whether the knee flips.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from pydantic import Field, ValidationError, model_validator

from runner import interrupts
from runner.cards._base import StrictModel, format_errors
from runner.errors import SettingsError
from runner.run import Reporter, RunRequest, execute_run, prepare_run
from runner.store import Store
from runner.store.records import PeakSearchRecord, RunRecord
from runner.store.searches import SearchLog

__all__ = ["PeakSettings", "Probe", "PeakSearch", "run_peak_search", "SearchReporter"]


class PeakSettings(StrictModel):
    """How a peak-QPS search brackets, bisects and repeats."""

    start_qps: float | None = Field(None, gt=0, description="First target QPS (default: the task card's target_qps).")
    min_qps: float = Field(1.0, gt=0, description="Never probe below this QPS.")
    max_qps: float = Field(10_000_000.0, gt=0, description="Never probe above this QPS.")
    tolerance: float = Field(0.02, gt=0, lt=1, description="Stop when (hi - lo) / lo of the bracket is at most this.")
    repeats_near_edge: int = Field(3, ge=1, le=100, description="Runs per QPS near the edge (and for the peak).")
    valid_threshold: float = Field(1.0, gt=0, le=1, description="P(VALID) a QPS needs to count as VALID.")
    edge_width: float = Field(0.1, gt=0, description="A bracket narrower than this (relative) is near the edge.")
    max_probes: int = Field(60, ge=1, le=1000, description="Stop after this many runs (the result says so).")
    inconclusive_retries: int = Field(2, ge=0, le=100, description="Repeat a QPS whose probe was a load-generator "
                                                                   "limit this many times before stopping there.")

    @model_validator(mode="after")
    def _range(self) -> "PeakSettings":
        if self.min_qps >= self.max_qps:
            raise ValueError(f"min_qps ({self.min_qps:g}) must be below max_qps ({self.max_qps:g})")
        return self


@dataclass(frozen=True)
class Probe:
    """One probe run at a target QPS, with the figures the search reports."""

    target_qps: float
    valid: bool
    run_id: int | None = None
    achieved_qps: float | None = None
    latency_ms: float | None = None
    over_bound: int | None = None
    warmup_qps: float | None = None
    compliant: bool = True
    reason: str | None = None
    inconclusive: bool = False  # a load-generator limit: neither VALID nor INVALID


class _ProbeLimit(Exception):
    """Raised inside the search when max_probes runs have been made."""


class _Inconclusive(Exception):
    """Raised inside the search when a QPS stayed a load-generator limit through every retry."""


class PeakSearch:
    """The bracketing-and-bisection logic over a `probe(qps) -> Probe` function (which runs one test).

    Runs on the calling thread; `on_probe(probe, result_so_far)` is called after every probe.
    """

    def __init__(self, settings: PeakSettings, probe: Callable[[float], Probe], start_qps: float,
                 on_probe: Callable[[Probe, dict[str, Any]], None] | None = None) -> None:
        self.s, self._probe, self.on_probe = settings, probe, on_probe
        self.start = min(max(start_qps, settings.min_qps), settings.max_qps)
        self.probes: list[Probe] = []
        self.lo: float | None = None
        self.hi: float | None = None
        self.note = ""

    def run(self) -> dict[str, Any]:
        """Search to the end (or to max_probes); return the result."""
        try:
            self._bracket()
            while self._bisect():
                pass
        except _ProbeLimit:
            self.note = f"stopped after max_probes ({self.s.max_probes}) runs before converging"
        except _Inconclusive as exc:
            qps, probe = exc.args
            self.note = (f"stopped at {qps:g} QPS: the load generator could not keep the schedule in "
                         f"{self.s.inconclusive_retries + 1} probes in a row there, so they say nothing about the "
                         f"system (not taken as its limit): {probe.reason}")
        return self.result()

    # -- probing ----------------------------------------------------------------------------

    def _run(self, qps: float) -> Probe:
        """One conclusive probe at qps (inconclusive ones are repeated, up to inconclusive_retries times)."""
        for _ in range(self.s.inconclusive_retries + 1):
            if len(self.probes) >= self.s.max_probes:
                raise _ProbeLimit
            probe = self._probe(qps)
            self.probes.append(probe)
            if self.on_probe:
                self.on_probe(probe, self.result())
            if not probe.inconclusive:
                return probe
        raise _Inconclusive(qps, probe)

    def tally(self, qps: float) -> tuple[int, int]:
        """(VALID runs, conclusive runs) at this QPS so far."""
        runs = [p.valid for p in self.probes if p.target_qps == qps and not p.inconclusive]
        return sum(runs), len(runs)

    def _passes(self, qps: float, repeats: int) -> bool:
        """Probe qps until P(VALID) >= threshold over `repeats` runs is decided (earlier runs count)."""
        theta = self.s.valid_threshold
        while True:
            valid, total = self.tally(qps)
            if total >= repeats:
                return valid / total >= theta
            if valid / repeats >= theta:
                return True
            if (valid + repeats - total) / repeats < theta:
                return False
            self._run(qps)

    # -- the three steps ----------------------------------------------------------------------

    def _bracket(self) -> None:
        s, q = self.s, self.start
        if self._passes(q, 1):
            self.lo = q
            estimate = self.probes[-1].warmup_qps or 0.0
            while self.hi is None and q < s.max_qps:
                q = min(max(2 * q, estimate if q == self.start else 0.0), s.max_qps)
                if self._passes(q, 1):
                    self.lo = q
                else:
                    self.hi = q
        else:
            self.hi = q
            self._bracket_down()

    def _bisect(self) -> bool:
        """Narrow the bracket, then confirm its lower end; True when the search must go on."""
        s = self.s
        if self.lo is None:
            self.note = f"no target QPS >= min_qps {s.min_qps:g} was VALID"
            return False
        while self.hi is not None and (self.hi - self.lo) / self.lo > s.tolerance:
            ratio = self.hi / self.lo
            mid = math.sqrt(self.lo * self.hi) if ratio > 2 else (self.lo + self.hi) / 2
            mid = float(f"{mid:.6g}")
            if not self.lo < mid < self.hi:  # the bracket is as narrow as 6 significant digits go
                break
            repeats = s.repeats_near_edge if ratio - 1 <= s.edge_width else 1
            if self._passes(mid, repeats):
                self.lo = mid
            else:
                self.hi = mid
        if self._passes(self.lo, s.repeats_near_edge):
            if self.hi is None:
                self.note = f"VALID at max_qps {s.max_qps:g}: the peak may be higher"
            return False
        self.hi, self.lo = self.lo, self._best_below(self.lo)
        if self.lo is None:
            self._bracket_down()
        return True

    def _best_below(self, qps: float) -> float | None:
        """The highest QPS tried below `qps` whose runs so far reach the threshold."""
        ok = [q for q in {p.target_qps for p in self.probes} if q < qps and self._meets(q)]
        return max(ok, default=None)

    def _meets(self, qps: float) -> bool:
        valid, total = self.tally(qps)
        return total > 0 and valid / total >= self.s.valid_threshold

    def _bracket_down(self) -> None:
        """Halve from the INVALID upper end until a QPS is VALID (or min_qps is reached)."""
        q = self.hi
        while self.lo is None and q > self.s.min_qps:
            q = max(q / 2, self.s.min_qps)
            if self._passes(q, 1):
                self.lo = q
            else:
                self.hi = q

    # -- the result ---------------------------------------------------------------------------

    def table(self) -> list[dict[str, Any]]:
        """P(VALID) per QPS tried, ascending."""
        rows = []
        for qps in sorted({p.target_qps for p in self.probes}):
            valid, total = self.tally(qps)
            limits = sum(p.inconclusive for p in self.probes if p.target_qps == qps)
            rows.append({"target_qps": qps, "runs": total, "valid": valid,
                         "p_valid": valid / total if total else None, "loadgen_limits": limits})
        return rows

    def peak(self) -> float | None:
        """The highest QPS with at least repeats_near_edge runs and P(VALID) >= the threshold."""
        ok = [r["target_qps"] for r in self.table()
              if r["runs"] >= self.s.repeats_near_edge and r["p_valid"] >= self.s.valid_threshold]
        return max(ok, default=None)

    def result(self) -> dict[str, Any]:
        """Probes, the P(VALID) table, the bracket, the peak, whether the knee flips, compliance."""
        table = self.table()
        flipping = [r["target_qps"] for r in table if r["p_valid"] is not None and 0 < r["p_valid"] < 1]
        return {"settings": self.s.to_dict(), "start_qps": self.start, "probes": [asdict(p) for p in self.probes],
                "table": table, "bracket": [self.lo, self.hi], "peak_qps": self.peak(),
                "knee_flips": bool(flipping), "flipping_qps": flipping,
                "compliant": all(p.compliant for p in self.probes), "note": self.note or None}


class SearchReporter(Reporter):
    """Receives a search's progress: each probe run's phases (as a Reporter) and each finished probe."""

    def probe_done(self, probe: Probe, result: dict[str, Any]) -> None:
        """A probe run finished; `result` is the search's result so far."""


class _LinkedStore:
    """A store whose new runs become probes of one search the moment they are created."""

    def __init__(self, store: Store, log: SearchLog, search_id: int) -> None:
        self._store, self._log, self._search_id = store, log, search_id

    def create_run(self, **fields: Any) -> int:
        run_id = self._store.create_run(**fields)
        self._log.link_run(run_id, self._search_id)
        return run_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def run_peak_search(req: RunRequest, store: Store, settings: PeakSettings | dict[str, Any] | None = None,
                    reporter: SearchReporter | None = None) -> PeakSearchRecord:
    """Search for the peak VALID target QPS of a server run request; return the stored search.

    Bad input (a scenario other than server, impossible settings) raises SettingsError before
    anything is written. Ctrl-C or SIGTERM marks the search (and its running probe) aborted.
    """
    s = _settings(settings)
    if req.scenario != "server":
        raise SettingsError(f"a peak-QPS search needs --scenario server, not {req.scenario!r}")
    first = prepare_run(req)
    start = s.start_qps or first.scenario.settings.target_qps
    rep = reporter or SearchReporter()
    store.recover_aborted()
    log = SearchLog(store)
    search_id = log.open(task_name=first.task.name, backend_name=first.backend.name, scenario="server",
                         request={**asdict(req), "search": s.to_dict(),
                                  "latency_bound_ms": first.scenario.settings.latency_bound_ms})
    linked = _LinkedStore(store, log, search_id)

    def probe(qps: float) -> Probe:
        prep = prepare_run(replace(req, scenario_settings={**req.scenario_settings, "target_qps": qps}))
        return _probe_of(store.get_run(execute_run(prep, linked, rep)), qps)

    def on_probe(p: Probe, result: dict[str, Any]) -> None:
        log.update_result(search_id, result)
        rep.probe_done(p, result)

    search = PeakSearch(s, probe, start, on_probe)
    try:
        with interrupts.watched():  # between probes too (execute_run watches each run)
            result = search.run()
            interrupts.check()
    except KeyboardInterrupt:
        log.finish(search_id, "aborted", {**search.result(), "note": "interrupted (Ctrl-C or SIGTERM)"})
        raise
    except BaseException as exc:
        log.finish(search_id, "failed", {**search.result(), "note": f"{type(exc).__name__}: {exc}"})
        raise
    log.finish(search_id, "complete", result)
    return log.get(search_id)


def _settings(settings: PeakSettings | dict[str, Any] | None) -> PeakSettings:
    if isinstance(settings, PeakSettings):
        return settings
    try:
        return PeakSettings.model_validate(settings or {})
    except ValidationError as exc:
        raise SettingsError(format_errors(exc, "peak search")) from None


def _probe_of(run: RunRecord, qps: float) -> Probe:
    s = run.summary or {}
    reasons = run.validity_reasons or []
    return Probe(target_qps=qps, valid=run.validity == "VALID", run_id=run.id,
                 achieved_qps=s.get("achieved_qps"), latency_ms=s.get("target_percentile_latency_ms"),
                 over_bound=s.get("over_bound_count"),
                 warmup_qps=s.get("warmup_queries_per_second"), compliant=bool(run.compliant),
                 reason=reasons[0] if reasons else None, inconclusive=run.validity == "LOADGEN_LIMIT")
