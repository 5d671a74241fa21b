"""Benchmark: the issuer's spin against its lateness, Poisson fidelity and CPU, on a simulated clock.

The issuer process sleeps until `spin` before each query and spins from there (runner.loadgen._issue_loop).
This runs that very loop (`issue`, unchanged) on a fake clock whose sleeps overshoot like a 2-vCPU VM's
quiet calibration (p50 ~45, p99 ~80, p99.9 ~140 us; 0.3% of sleeps 100-160 us late), so the figures do
not depend on how busy the machine running it is. For each rate and spin: the issue delay at p99 and
p99.9, the KS p-value of the issued gaps against exponential(1 / QPS) beside the schedule's own, and
the share of a core the issuer spends spinning, per 1k QPS. The spins compared: the calibration's
rule (p99 overshoot + 10 us, runner.loadgen.calibration) and the earlier one (p99.9 + 10 us).

Run: `.venv/bin/python benchmarks/bench_issuer_spin.py [--seconds 10]`.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from runner.loadgen import _issue_loop as loop
from runner.loadgen.poisson import server_schedule

SEED = 14962580496156340209  # the server scenario's default schedule_rng_seed
_START = 1_000_000


class OvershootClock:
    """A clock that advances 0.25 us per read (a clock read of the spin loop: a query is issued up to 0.25 us after
    its time, fine enough for the KS test to see no grid); a sleep advances by its length plus a drawn overshoot."""

    def __init__(self, seed: int = 1) -> None:
        self.now, self.slept, self.rng = 0, 0, np.random.default_rng(seed)
        self._pool: list[int] = []

    def draw(self, k: int) -> np.ndarray:
        """k overshoots (ns): 40 us + exponential(8.5 us), or 100-160 us for 0.3% of them."""
        tail = self.rng.random(k) < 0.003
        return np.where(tail, self.rng.uniform(100e3, 160e3, k), 40e3 + self.rng.exponential(8.5e3, k))

    def overshoot_ns(self) -> int:
        if not self._pool:
            self._pool = self.draw(65_536).astype(np.int64).tolist()
        return self._pool.pop()

    def __call__(self) -> int:
        self.now += 250
        return self.now

    def sleep(self, seconds: float) -> None:
        d = int(seconds * 1e9) + self.overshoot_ns()
        self.now += d
        self.slept += d


def simulate(qps: float, seconds: float, spin_us: float) -> dict[str, float]:
    """Issue a `seconds`-long Poisson schedule at `qps` with `spin_us` on the overshooting clock."""
    offsets = server_schedule(qps, SEED, min_duration_ms=int(seconds * 1e3), min_query_count=1,
                              max_duration_ms=3_600_000)
    clock, n = OvershootClock(), len(offsets)
    issued, ctrl = [0] * n, [0] * loop.HEADER
    ctrl[loop.N], ctrl[loop.START], ctrl[loop.SPIN] = n, _START, int(spin_us * 1e3)
    loop.issue([int(o) for o in offsets], issued, ctrl, clock=clock, sleep=clock.sleep)
    issued_ns = np.asarray(issued)
    late = np.sort(issued_ns - (offsets + _START)) / 1e3
    span = clock.now - _START
    return {"late_p99_us": float(np.percentile(late, 99)), "late_p999_us": float(np.percentile(late, 99.9)),
            "ks_p": float(stats.kstest(np.diff(issued_ns), "expon", args=(0, 1e9 / qps)).pvalue),
            "schedule_ks_p": float(stats.kstest(np.diff(offsets), "expon", args=(0, 1e9 / qps)).pvalue),
            "cores_per_1k_qps": (span - clock.slept) / span / (qps / 1_000)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="schedule length per rate")
    args = parser.parse_args(argv)
    drawn = OvershootClock(seed=2).draw(200_000) / 1e3
    p99, p999 = np.percentile(drawn, 99), np.percentile(drawn, 99.9)
    print(f"simulated sleep overshoot: p50 {np.percentile(drawn, 50):.3g}, p99 {p99:.3g}, p99.9 {p999:.3g} us")
    for qps in (1_000.0, 10_000.0):
        for rule, spin in (("p99 + 10 us (now)", p99 + 10), ("p99.9 + 10 us (before)", p999 + 10)):
            r = simulate(qps, args.seconds, spin)
            print(f"{qps:>7,.0f} QPS  spin {spin:5.1f} us = {rule:23} late p99 {r['late_p99_us']:6.2f} us, p99.9 "
                  f"{r['late_p999_us']:6.2f} us; KS p {r['ks_p']:.3f} (the schedule's {r['schedule_ks_p']:.3f}); "
                  f"issuer {r['cores_per_1k_qps']:.3f} cores per 1k QPS", flush=True)


if __name__ == "__main__":
    main()
