"""Benchmark: the server scenario with the null backend, our load generator vs MLCommons LoadGen.

(a) Peak QPS at a 15 ms p99 bound: the highest target QPS whose server run is VALID, found by the
    same bracketing and bisection for both load generators, interleaved step by step in one
    process (same minimum duration and query count, same null system answering at once);
    printed as the ratio ours / LoadGen (the issue asks for >= 1).
(b) Poisson fidelity at 10k QPS: the Kolmogorov-Smirnov p-value of the *issued* inter-arrival
    times against the exponential distribution (the issue asks for p > 0.01) and the achieved
    issue rate over the target (within 1%); LoadGen's figures (issue times taken in its
    callback) beside ours, and the schedule's own p-value (the most any issuer can reach with
    that seed). Ours with the issuer process (the default on 2+ CPUs: the schedule
    kept by a process with a GIL and a CPU of its own) and with `issuer: thread` (each worker
    waits for its query's time itself, so a system that takes c seconds to accept a query
    makes gaps below c impossible, a deficit of about c x QPS in the CDF that the KS test
    detects once the run is long enough: for the null backend's ~1.6 us, beyond ~10,000 gaps).

Run: `.venv/bin/python benchmarks/bench_server.py [--duration-ms 2000] [--tolerance 0.03] [--fidelity-repeats 3]`.
"""

from __future__ import annotations

import argparse
import math
import re

import numpy as np
from _loadgen_util import loadgen_summary, null_sut
from scipy import stats

from runner.loadgen.poisson import server_schedule
from runner.scenarios.server import Server, ServerSettings

BOUND_MS = 15.0


def ours(qps: float, duration_ms: int, min_queries: int, concurrency: int | None = None,
         full: bool = False, issuer: str = "auto") -> tuple[bool, np.ndarray, float, dict]:
    """(VALID?, issued timestamps, the schedule's own rate, summary) of one of our server runs on the null backend.

    `full`: issue the whole schedule even once the run cannot be VALID (the fidelity runs).
    """
    sut = null_sut()[0]
    s = ServerSettings(target_qps=qps, latency_bound_ms=BOUND_MS, min_duration_ms=duration_ms,
                       min_query_count=min_queries, warmup_duration_ms=200, concurrency=concurrency,
                       stop_when_invalid=not full, issuer=issuer)
    result = Server(s).run(sut, sut.qsl, sink=lambda r: None)
    valid = None if result.validity == "LOADGEN_LIMIT" else result.valid  # None: inconclusive
    return valid, np.sort(result.records["issued_ns"]), result.summary["scheduled_qps"], result.summary


def loadgen(qps: float, duration_ms: int, min_queries: int) -> tuple[bool, np.ndarray, None, dict]:
    """(VALID?, issue-callback timestamps, None: its schedule is not exposed) of one LoadGen server run."""
    issued: list[int] = []
    text = loadgen_summary("Server", issued_ns=issued, prefix="lg-server-", server_target_qps=qps,
                           server_target_latency_ns=int(BOUND_MS * 1e6), min_duration_ms=duration_ms,
                           min_query_count=min_queries)
    valid = re.search(r"Result is : (\w+)", text).group(1) == "VALID"
    return valid, np.asarray(issued, dtype=np.int64), None, {}


class Bisection:
    """Bracket (double / halve) then bisect to a relative tolerance: the highest VALID QPS seen.

    A load-generator limit (valid None) is repeated up to twice, then stops the search there (`note`);
    so does halving below 1 QPS."""

    def __init__(self, start: float, tolerance: float) -> None:
        self.lo: float | None = None
        self.hi: float | None = None
        self.next, self.tol = start, tolerance
        self.limits, self.note = 0, ""

    def done(self) -> bool:
        return bool(self.note) or (self.lo is not None and self.hi is not None
                                   and (self.hi - self.lo) / self.lo <= self.tol)

    def record(self, qps: float, valid: bool | None) -> None:
        if valid is None:
            self.limits += 1
            if self.limits > 2:
                self.note = f"stopped at {qps:,.0f} QPS: the load generator could not keep the schedule"
            return
        self.limits = 0
        if not valid and self.lo is None and qps < 1:
            self.note = "no VALID QPS above 1"
            return
        if valid:
            self.lo = qps
        else:
            self.hi = qps
        if self.hi is None:
            self.next = 2 * qps
        elif self.lo is None:
            self.next = qps / 2
        else:
            ratio = self.hi / self.lo
            self.next = math.sqrt(self.lo * self.hi) if ratio > 2 else (self.lo + self.hi) / 2


def peak_qps(args: argparse.Namespace) -> None:
    searches = {"infersight": (ours, Bisection(args.start_qps, args.tolerance)),
                "LoadGen": (loadgen, Bisection(args.start_qps, args.tolerance))}
    while not all(b.done() for _, b in searches.values()):
        for name, (fn, b) in searches.items():  # interleaved, so drift hits both alike
            if b.done():
                continue
            qps = b.next
            valid = fn(qps, args.duration_ms, args.min_queries)[0]
            b.record(qps, valid)
            verdict = "LOADGEN_LIMIT" if valid is None else ("VALID" if valid else "INVALID")
            print(f"  {name:10} {qps:>12,.0f} QPS  {verdict}", flush=True)
    a, b = searches["infersight"][1].lo or 0.0, searches["LoadGen"][1].lo or 0.0
    notes = "; ".join(f"{name}: {bis.note}" for name, (_, bis) in searches.items() if bis.note)
    print(f"(a) peak VALID QPS at p99 <= {BOUND_MS:g} ms, null SUT (within {args.tolerance:.0%}): "
          f"infersight {a:,.0f}   LoadGen {b:,.0f}   ratio {a / b if b else float('nan'):.2f}x"
          + (f" ({notes})" if notes else ""))


def fidelity(args: argparse.Namespace) -> None:
    qps, mean_ns = 10_000.0, 1e9 / 10_000
    print(f"(b) Poisson fidelity at {qps:,.0f} QPS, {args.fidelity_ms / 1e3:g} s runs: KS test of the issued "
          f"inter-arrival times against exponential(mean {mean_ns / 1e3:g} us), over the whole run and over its "
          f"first 10,000 gaps; D = the largest CDF gap, at the inter-arrival time shown")
    seed = ServerSettings.model_fields["schedule_rng_seed"].default
    schedule = server_schedule(qps, seed, min_duration_ms=args.fidelity_ms, min_query_count=1, max_duration_ms=600_000)
    runs = (("the schedule itself (scheduled times)", lambda: (True, schedule, qps, {})),
            *((f"infersight, null backend (defaults) #{k + 1}", lambda: ours(qps, args.fidelity_ms, 1, full=True))
              for k in range(args.fidelity_repeats)),
            ("infersight, null backend, 1 worker", lambda: ours(qps, args.fidelity_ms, 1, concurrency=1, full=True)),
            ("infersight, null backend, issuer: thread", lambda: ours(qps, args.fidelity_ms, 1, concurrency=1,
                                                                      full=True, issuer="thread")),
            ("LoadGen, null SUT", lambda: loadgen(qps, args.fidelity_ms, 1)))
    for name, fn in runs:
        _, issued, scheduled_qps, s = fn()
        gaps = np.diff(issued)
        whole = stats.kstest(gaps, "expon", args=(0, mean_ns))
        first = stats.kstest(gaps[:10_000], "expon", args=(0, mean_ns)).pvalue
        rate = (len(issued) - 1) / ((issued[-1] - issued[0]) / 1e9)
        print(f"  {name:42} {len(gaps):>8,} gaps  KS p = {whole.pvalue:<9.3g} (D {whole.statistic:.4f} at "
              f"{whole.statistic_location / 1e3:5.1f} us)  first 10,000: p = {first:<9.3g} "
              f"issue rate / target = {rate / qps:.4f}"
              + (f" (/ its schedule's rate {rate / scheduled_qps:.4f})" if scheduled_qps else "")
              + (f"; late p99 {s['issue_delay_p99_us']:.3g} us" if s.get("issue_delay_p99_us") is not None else "")
              + (f"; issuer {s['issuer_cores_per_1k_qps']:.3f} cores per 1k QPS (spin {s['issuing']['spin_us']:g} us)"
                 if s.get("issuer_cores_per_1k_qps") else ""), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=2000, help="min duration of each peak probe")
    parser.add_argument("--min-queries", type=int, default=100, help="min query count of each peak probe")
    parser.add_argument("--start-qps", type=float, default=50_000)
    parser.add_argument("--tolerance", type=float, default=0.03)
    parser.add_argument("--fidelity-ms", type=int, default=10_000, help="duration of the 10k QPS fidelity runs")
    parser.add_argument("--fidelity-repeats", type=int, default=5, help="fidelity runs with the default settings "
                        "(a KS p-value is uniform under the null: one run in a hundred fails p > 0.01 by chance)")
    args = parser.parse_args(argv)
    fidelity(args)  # first, before the peak search has kept both cores at 100% for minutes
    peak_qps(args)


if __name__ == "__main__":
    main()
