"""Benchmark: multi_stream on the null backend, our runner vs MLCommons LoadGen's MultiStream, and streams.

(1) One stream, 8 samples a query, same minimum duration: the p50 and p99 query latency of our
    null backend (gathering the 8 samples and answering with zeros) vs LoadGen's no-op SUT, printed
    as ratios LoadGen / ours (>= 1: our per-query overhead is no larger than LoadGen's).
(2) Several concurrent streams (ours only; LoadGen has one): total queries/s with 1, 2 and 4 streams,
    as ratios to 1 stream, and Jain's fairness index over per-stream throughput.
Run: `.venv/bin/python benchmarks/bench_multi_stream.py`.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from runner.backends.null import NullBackend
from runner.cards import ModelCard
from runner.scenarios.multi_stream import MultiStream, MultiStreamSettings
from runner.sut import BackendSUT
from runner.task import ArraySampleLibrary

SAMPLES = 1024
PER_QUERY = 8


def loadgen(duration_ms: int) -> dict[str, float]:
    """p50 and p99 query latency (ns) of LoadGen's MultiStream with a SUT that completes at once."""
    import mlperf_loadgen as lg

    def issue(query_samples):
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in query_samples])

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(SAMPLES, SAMPLES, lambda s: None, lambda s: None)
    s = lg.TestSettings()
    s.scenario, s.mode = lg.TestScenario.MultiStream, lg.TestMode.PerformanceOnly
    s.min_duration_ms, s.min_query_count = duration_ms, 662
    s.multi_stream_samples_per_query, s.multi_stream_expected_latency_ns = PER_QUERY, 5_000
    out = tempfile.mkdtemp(prefix="lg-")
    log = lg.LogSettings()
    log.log_output.outdir = out
    log.log_output.copy_summary_to_stdout = False
    lg.StartTestWithLogSettings(sut, qsl, s, log)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    text = Path(out, "mlperf_log_summary.txt").read_text()
    return {f"p{p}": float(re.search(rf"{p}\.00 percentile latency \(ns\)\s*:\s*(\d+)", text).group(1))
            for p in (50, 99)}


def _sut() -> tuple[BackendSUT, ArraySampleLibrary]:
    card = ModelCard.model_validate({
        "task": "null", "task_version": "1.0.0", "name": "null", "variant": "fp32", "file": "none",
        "sha256": "0" * 64, "size_bytes": 1, "precision": "fp32", "opset": 17, "operators": ["Identity"],
        "build": {"script": "none", "seed": 0},
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 1]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 1]}],
        "reference_quality": {"metric": "none", "value": 0, "samples": 1, "fp32_reference": 0}})
    backend = NullBackend()
    backend.prepare(card, Path("none"))
    qsl = ArraySampleLibrary({"x": np.zeros((SAMPLES, 1), np.float32)}, SAMPLES)
    return BackendSUT(backend, qsl), qsl


def ours(duration_ms: int, streams: int = 1) -> dict[str, float]:
    """p50/p99 query latency (ns), total queries/s and Jain's index of our runner on the null backend."""
    sut, qsl = _sut()
    s = MultiStreamSettings(min_duration_ms=duration_ms, samples_per_query=PER_QUERY, streams=streams)
    summary = MultiStream(s).run(sut, qsl, sink=lambda r: None).summary
    return {"p50": summary["latency_p50_ms"] * 1e6, "p99": summary["latency_p99_ms"] * 1e6,
            "qps": summary["queries_per_second"], "jain": summary["fairness"]["jain_index_throughput"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
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
