"""How the server scenario issues queries on the CPUs a run may use: the issuer, its CPU, the backend's CPUs.

`plan_issuing` decides from the CPU set, the settings and the machine's calibration
(runner.loadgen.calibration); it is a pure function, so the rules are tested on fake machines:

- **3 or more CPUs** (`isolation: auto` or `dedicated`): the issuer process gets the last CPU to
  itself and the backend's thread pools are kept on the others (the runner pins the thread that
  creates them, so every thread the backend starts inherits that mask; the backend card records
  it as the backend setting `cpus`, the system card as `issuer_cpu` and `backend_cpus`).
- **2 CPUs** (`auto`): the issuer process gets CPU 1 and the backend CPU 0 (`dedicated`): the one
  arrangement whose lateness the calibration bounds (its sleeps' overshoot within the spin) and
  whose issue times stay Poisson-exact. The alternative, workers issuing their own queries with
  both CPUs for the system (`issuer: thread`), is late by a thread hand-over plus the overshoot
  beyond its 50 us spin, doubled for a backend contending for the CPUs, and its issue gaps cannot
  go below the system's accept time: it never fits a tolerance the dedicated issuer misses, so
  `why` gives its expected lateness for comparison and the warning covers both.
- **1 CPU**: the workers issue (a spinning process would take the system's only core).
- `isolation: shared`: the issuer process on the last CPU with the backend free to use every CPU
  (the arrangement before isolation existed): its lateness is not bounded, and the plan says so.

The issuer process is pinned to its CPU or floats over the run's CPUs (`issuer_pinning`, with its
CPU set `issuer_cpus`; the backend is kept off the issuer's CPU either way), as the calibration's
trial found lower in p99 lateness (Calibration.issuer_pinning: a floating issuer can leave a CPU
that another process takes; on a quiet machine a tie stays pinned).

A plan carries a `warning` when no arrangement is expected to keep the p99 lateness within the
tolerance (the calibration's figures say why). `dedicated` on a CPU set too small for it (one CPU)
is refused (SettingsError: exit 2, nothing written).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from runner.cpus import format_cpus
from runner.errors import SettingsError
from runner.loadgen.calibration import Calibration

__all__ = ["IssuePlan", "plan_issuing", "machine_load", "CONTENTION"]

CONTENTION = 2.0  # a real backend on the same CPUs: the calibrated thread hand-over lateness, doubled


@dataclass(frozen=True)
class IssuePlan:
    """Who issues, on which CPU, where the backend's threads may run, how long the issuer spins, and why."""

    issuer: Literal["process", "thread"]
    isolation: Literal["dedicated", "shared", "none"]
    issuer_cpu: int | None
    backend_cpus: list[int] | None   # None: every CPU of the run
    spin_us: float
    expected_lateness_us: float | None  # the calibration's p99 estimate for this arrangement (None: not bounded)
    why: str
    warning: str | None = None
    calibration: dict[str, Any] | None = None  # the machine's calibration the plan followed
    issuer_pinning: Literal["pinned", "floating"] | None = None  # the issuer process's (None: no process)
    issuer_cpus: list[int] | None = None  # the CPUs the issuer process may run on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_issuing(cpus: list[int], cal: Calibration, tolerance_us: float,
                 issuer: str = "auto", isolation: str = "auto") -> IssuePlan:
    """The issuing arrangement for a run on `cpus` (sorted CPU ids) with a p99 lateness tolerance (µs)."""
    plan = replace(_plan(cpus, cal, tolerance_us, issuer, isolation), calibration=cal.to_dict())
    if plan.issuer != "process":
        return plan
    pinning = cal.issuer_pinning
    trial = cal.issuer_trial_us
    where = f"pinned to CPU {plan.issuer_cpu}" if pinning == "pinned" else f"floating over CPU {format_cpus(cpus)}"
    if trial:
        where += (f" (the calibration's trial: p99 lateness pinned {trial['pinned']['p99']:.3g} us, "
                  f"floating {trial['floating']['p99']:.3g} us)")
    why = f"{plan.why}; issuer {where}"
    return replace(plan, why=why, issuer_pinning=pinning,
                   issuer_cpus=[plan.issuer_cpu] if pinning == "pinned" else list(cpus))


def _plan(cpus: list[int], cal: Calibration, tolerance_us: float, issuer: str, isolation: str) -> IssuePlan:
    n, last = len(cpus), cpus[-1]
    if isolation == "dedicated" and n < 2:
        raise SettingsError(f"isolation=dedicated needs at least 2 CPUs (one for the issuer, one for the system); "
                            f"the run may use {n} (CPU {format_cpus(cpus)})")
    if isolation == "dedicated" and issuer == "thread":
        raise SettingsError("isolation=dedicated gives the issuer process a CPU of its own: it cannot be "
                            "combined with issuer=thread")
    thread_ok = cal.thread_lateness_us * CONTENTION <= tolerance_us
    process_ok = cal.process_lateness_us <= tolerance_us
    if issuer == "thread" or (issuer == "auto" and n == 1):
        return _thread(cpus, cal, tolerance_us, thread_ok)
    if isolation == "shared" or n == 1:
        return IssuePlan("process", "shared", last, None, cal.spin_us, None,
                         f"issuer process on CPU {last}, backend free to use CPU {format_cpus(cpus)} "
                         f"(isolation={isolation if n > 1 else 'none possible on 1 CPU'})",
                         "the backend's threads may run on the issuer's CPU: the issuer's lateness is not bounded")
    rest = cpus[:-1]
    why = (f"issuer process on CPU {last} of its own, backend kept on CPU {format_cpus(rest)}"
           + (f" (spinning {cal.spin_us:g} us before each query covers this machine's p99 sleep overshoot of "
              f"{cal.sleep_overshoot_us['p99']:.3g} us" if process_ok else f" (expected ~{cal.process_lateness_us:.3g} us "
              f"late at p99") + (f"; workers issuing their own queries would be ~{cal.thread_lateness_us * CONTENTION:.3g}"
                                 f" us late)" if n == 2 else ")"))
    expected = cal.process_lateness_us
    warning = None if process_ok else _none_can(cal, tolerance_us, expected)
    return IssuePlan("process", "dedicated", last, rest, cal.spin_us, expected, why, warning)


def _thread(cpus: list[int], cal: Calibration, tolerance_us: float, thread_ok: bool) -> IssuePlan:
    expected = cal.thread_lateness_us * CONTENTION
    why = (f"workers issue their own queries; backend free to use CPU {format_cpus(cpus)}"
           + (" (one CPU: no CPU to spare for an issuer process)" if len(cpus) == 1 else ""))
    warning = None if thread_ok else _none_can(cal, tolerance_us, expected)
    return IssuePlan("thread", "none", None, None, cal.spin_us, expected, why, warning)


def _none_can(cal: Calibration, tolerance_us: float, expected: float) -> str:
    return (f"no issuing arrangement on these CPUs is expected to keep the p99 lateness within the tolerance "
            f"{tolerance_us:.3g} us (expected ~{expected:.3g} us: this machine's sleeps overshoot by "
            f"{cal.sleep_overshoot_us['p99']:.3g} us at p99, a thread hand-over takes {cal.handover_us['p99']:.3g} us "
            f"at p99); a run failing its latency bound may be marked a load-generator limit")


def machine_load() -> dict[str, Any]:
    """The machine's 1-minute load average and CPU count (a run's lateness is read against them); {} where unknown."""
    try:
        return {"machine_load_1m": round(os.getloadavg()[0], 2), "machine_cpus": os.cpu_count()}
    except (OSError, AttributeError):
        return {}
