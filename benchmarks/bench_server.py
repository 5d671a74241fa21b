"""Benchmark: the server scenario with the null backend, our load generator vs MLCommons LoadGen.

(a) Peak QPS at a 15 ms p99 bound: the highest target QPS whose server run is VALID, found by the
    project's own peak search (runner.peak: bracket, bisect to --tolerance, --repeats-near-edge runs
    per QPS near the edge and for the peak, a load-generator limit inconclusive) for both load
    generators, their probes interleaved one by one in one process (same minimum duration and query
    count, same null system answering at once); printed as the ratio ours / LoadGen (the issue asks
    for >= 1.5), with each P(VALID) table.
(b) Poisson fidelity at 10k QPS: the Kolmogorov-Smirnov p-value of the *issued* inter-arrival
    times against the exponential distribution (the issue asks for p > 0.01) and the achieved
    issue rate over the target (within 1%); LoadGen's figures (issue times taken in its
    callback) beside ours, and the schedule's own p-value (the most any issuer can reach with
    that seed). Ours with the issuer process (the default on 2+ CPUs: the schedule
    kept by a process with a GIL and a CPU of its own) and with `issuer: thread` (each worker
    waits for its query's time itself, so a system that takes c seconds to accept a query
    makes gaps below c impossible, a deficit of about c x QPS in the CDF that the KS test
    detects once the run is long enough: for the null backend's ~1.6 us, beyond ~10,000 gaps).

First it prints this machine's timing calibration (the issuer's spin, pinned or floating, and the load).
Run: `.venv/bin/python benchmarks/bench_server.py [--duration-ms 2000] [--tolerance 0.03] [--fidelity-repeats 5]`
(`--skip-fidelity` / `--skip-peak` for one part).
"""

from __future__ import annotations

import argparse
import re
import threading
from typing import Any

import numpy as np
from _loadgen_util import loadgen_summary, null_sut, print_calibration
from scipy import stats

from runner.loadgen.poisson import server_schedule
from runner.peak import PeakSearch, PeakSettings, Probe
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


class _Turns:
    """Lets two searches, each on its own thread, run their probes alternately (so drift hits both alike)."""

    def __init__(self, names: list[str]) -> None:
        self.order, self.turn, self.cond = list(names), 0, threading.Condition()

    def probe(self, name: str, fn: Any) -> Any:
        with self.cond:
            self.cond.wait_for(lambda: self.order[self.turn % len(self.order)] == name)
            try:
                return fn()
            finally:
                self.turn += 1
                self.cond.notify_all()

    def leave(self, name: str) -> None:
        """`name`'s search has ended: the other one probes on its own."""
        with self.cond:
            self.order.remove(name)
            self.cond.notify_all()


def _search(name: str, fn: Any, args: argparse.Namespace, turns: _Turns, out: dict[str, dict]) -> None:
    def probe(qps: float) -> Probe:
        valid, _, _, s = turns.probe(name, lambda: fn(qps, args.duration_ms, args.min_queries))
        print(f"  {name:10} {qps:>12,.0f} QPS  {'LOADGEN_LIMIT' if valid is None else ('VALID' if valid else 'INVALID')}"
              + (f"  (issued late by p99 {s['issue_delay_p99_us']:.3g} us, p99 latency "
                 f"{s.get('target_percentile_latency_ms', float('nan')):.3g} ms)" if s.get("issue_delay_p99_us") else ""),
              flush=True)
        return Probe(qps, bool(valid), inconclusive=valid is None,
                     reason="the load generator could not keep the schedule" if valid is None else None)

    settings = PeakSettings(tolerance=args.tolerance, repeats_near_edge=args.repeats_near_edge,
                            edge_width=args.edge_width, max_probes=60)
    try:
        out[name] = PeakSearch(settings, probe, args.start_qps).run()
    finally:
        turns.leave(name)


def peak_qps(args: argparse.Namespace) -> None:
    """Both load generators' peaks by the project's own peak search (runner.peak), probes interleaved."""
    gens = {"infersight": ours, "LoadGen": loadgen}
    turns, results = _Turns(list(gens)), {}
    threads = [threading.Thread(target=_search, args=(n, fn, args, turns, results), daemon=True)  # Ctrl-C ends all
               for n, fn in gens.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = (results.get(n, {}).get("peak_qps") or 0.0 for n in gens)
    notes = "; ".join(f"{n}: {r['note']}" for n, r in results.items() if r.get("note"))
    print(f"(a) peak VALID QPS at p99 <= {BOUND_MS:g} ms, null SUT (peak search within {args.tolerance:.0%}, "
          f"{args.repeats_near_edge} runs per QPS within {args.edge_width:.0%} of the edge): infersight {a:,.0f}   "
          f"LoadGen {b:,.0f}   ratio {a / b if b else float('nan'):.2f}x" + (f" ({notes})" if notes else ""))
    for n, r in results.items():
        print(f"    {n:10} P(VALID) by QPS: " + ", ".join(f"{row['target_qps']:,.0f} {row['valid']}/{row['runs']}"
                                                       for row in r.get("table", [])))


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
              + (f"; issuer {s['issuer_cores_per_1k_qps']:.3f} cores per 1k QPS (spin {s['issuing']['spin_us']:g} us, "
                 f"{s['issuing'].get('issuer_pinning')})"
                 if s.get("issuer_cores_per_1k_qps") else ""), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=2000, help="min duration of each peak probe")
    parser.add_argument("--min-queries", type=int, default=100, help="min query count of each peak probe")
    parser.add_argument("--start-qps", type=float, default=50_000)
    parser.add_argument("--tolerance", type=float, default=0.03, help="the peak search's resolution (relative)")
    parser.add_argument("--repeats-near-edge", type=int, default=2, help="runs per QPS near the edge, all VALID")
    parser.add_argument("--edge-width", type=float, default=0.1, help="a bracket this narrow (relative) is the edge")
    parser.add_argument("--skip-fidelity", action="store_true")
    parser.add_argument("--skip-peak", action="store_true")
    parser.add_argument("--fidelity-ms", type=int, default=10_000, help="duration of the 10k QPS fidelity runs")
    parser.add_argument("--fidelity-repeats", type=int, default=5, help="fidelity runs with the default settings "
                        "(a KS p-value is uniform under the null: one run in a hundred fails p > 0.01 by chance)")
    args = parser.parse_args(argv)
    print_calibration()
    if not args.skip_fidelity:
        fidelity(args)  # first, before the peak search has kept both cores at 100% for minutes
    if not args.skip_peak:
        peak_qps(args)


if __name__ == "__main__":
    main()
