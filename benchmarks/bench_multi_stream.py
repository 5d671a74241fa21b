"""Benchmark: multi_stream on the null backend, our runner vs MLCommons LoadGen's MultiStream, and streams.

(1) One stream, 8 samples a query, same minimum duration: the p50 and p99 query latency of our
    null backend (gathering the 8 samples and answering with zeros) vs LoadGen's no-op SUT, printed
    as ratios LoadGen / ours (>= 1: our per-query overhead is no larger than LoadGen's).
(2) Several concurrent streams (ours only; LoadGen has one): total queries/s with 1, 2 and 4 streams,
    as ratios to 1 stream, and Jain's fairness index over per-stream throughput.
Run: `.venv/bin/python benchmarks/bench_multi_stream.py`.
"""

from __future__ import annotations

import re

import numpy as np
from _loadgen_util import SAMPLES, loadgen_summary, null_sut, parse_args

from runner.scenarios.multi_stream import MultiStream, MultiStreamSettings

PER_QUERY = 8


def loadgen(duration_ms: int) -> dict[str, float]:
    """p50 and p99 query latency (ns) of LoadGen's MultiStream with a SUT that completes at once."""
    text = loadgen_summary("MultiStream", min_duration_ms=duration_ms, min_query_count=662,
                           multi_stream_samples_per_query=PER_QUERY, multi_stream_expected_latency_ns=5_000)
    return {f"p{p}": float(re.search(rf"{p}\.00 percentile latency \(ns\)\s*:\s*(\d+)", text).group(1))
            for p in (50, 99)}


def ours(duration_ms: int, streams: int = 1) -> dict[str, float]:
    """p50/p99 query latency (ns), total queries/s and Jain's index of our runner on the null backend."""
    sut, qsl = null_sut()
    s = MultiStreamSettings(min_duration_ms=duration_ms, samples_per_query=PER_QUERY, streams=streams)
    summary = MultiStream(s).run(sut, qsl, sink=lambda r: None).summary
    return {"p50": summary["latency_p50_ms"] * 1e6, "p99": summary["latency_p99_ms"] * 1e6,
            "qps": summary["queries_per_second"], "jain": summary["fairness"]["jain_index_throughput"]}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, argv)
    print(f"null SUT, {SAMPLES} samples loaded, {PER_QUERY} samples a query, min duration {args.duration_ms} ms; "
          f"median of {args.repeats}")
    lg_runs, our_runs = [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        lg_runs.append(loadgen(args.duration_ms))
        our_runs.append(ours(args.duration_ms))
    for p in ("p50", "p99"):
        a, b = float(np.median([r[p] for r in our_runs])), float(np.median([r[p] for r in lg_runs]))
        print(f"one stream {p} query latency  infersight {a:>9,.0f} ns   LoadGen {b:>9,.0f} ns   "
              f"ratio LoadGen/ours {b / a:5.2f}x")
    base = float(np.median([r["qps"] for r in our_runs]))
    for streams in (2, 4):
        runs = [ours(args.duration_ms, streams) for _ in range(args.repeats)]
        qps, jain = float(np.median([r["qps"] for r in runs])), float(np.median([r["jain"] for r in runs]))
        print(f"{streams} streams  {qps:>12,.0f} queries/s in all   ratio to 1 stream ({base:,.0f}) "
              f"{qps / base:5.2f}x   Jain's index over per-stream throughput {jain:.4f}")


if __name__ == "__main__":
    main()
