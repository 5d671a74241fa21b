"""Benchmark (a): the null backend driven by our runner vs a no-op SUT driven by MLCommons' LoadGen.

Both in the same process and run, same sample library size, same minimum duration:
offline samples/s and single_stream queries/s, printed as ratios ours / LoadGen (>= 1 is
what the foundation issue asks). Run: `.venv/bin/python benchmarks/bench_loadgen.py`.
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
from runner.scenarios.offline import Offline, OfflineSettings
from runner.scenarios.single_stream import SingleStream, SingleStreamSettings
from runner.sut import BackendSUT
from runner.task import ArraySampleLibrary

SAMPLES = 1024


def loadgen(scenario: str, duration_ms: int, offline_samples: int) -> float:
    """Offline samples/s or single-stream queries/s ("QPS w/ loadgen overhead") of LoadGen's null SUT."""
    import mlperf_loadgen as lg

    def issue(query_samples):
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in query_samples])

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(SAMPLES, SAMPLES, lambda s: None, lambda s: None)
    s = lg.TestSettings()
    s.scenario = lg.TestScenario.Offline if scenario == "offline" else lg.TestScenario.SingleStream
    s.mode = lg.TestMode.PerformanceOnly
    s.min_duration_ms = duration_ms
    s.min_query_count = offline_samples if scenario == "offline" else 1024
    s.offline_expected_qps = offline_samples * 1000 / duration_ms / 1.1
    s.single_stream_expected_latency_ns = 2_000
    out = tempfile.mkdtemp(prefix="lg-")
    log = lg.LogSettings()
    log.log_output.outdir = out
    log.log_output.copy_summary_to_stdout = False
    lg.StartTestWithLogSettings(sut, qsl, s, log)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    text = Path(out, "mlperf_log_summary.txt").read_text()
    number = r"\s*:\s*([0-9.eE+-]+)"
    key = ("Samples per second" if scenario == "offline" else "QPS w/ loadgen overhead") + number
    return float(re.search(key, text).group(1))


def ours(scenario: str, duration_ms: int, offline_samples: int) -> float:
    """The same figure from our runner on the null backend."""
    card = ModelCard.model_validate({
        "task": "null", "task_version": "1.0.0", "name": "null", "variant": "fp32", "file": "none",
        "sha256": "0" * 64, "size_bytes": 1, "precision": "fp32", "opset": 17, "operators": ["Identity"],
        "build": {"script": "none", "seed": 0},
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 1]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 1]}],
        "reference_quality": {"metric": "none", "value": 0, "samples": 1, "fp32_reference": 0}})
    backend = NullBackend()  # default batch size (32): the system batches, LoadGen answers per sample
    backend.prepare(card, Path("none"))
    qsl = ArraySampleLibrary({"x": np.zeros((SAMPLES, 1), np.float32)}, SAMPLES)
    sut = BackendSUT(backend, qsl)
    if scenario == "offline":
        s = OfflineSettings(min_duration_ms=duration_ms, min_sample_count=offline_samples,
                            max_sample_count=offline_samples, expected_qps=offline_samples * 1000 / duration_ms / 1.1)
        return Offline(s).run(sut, qsl, sink=lambda r: None).summary["samples_per_second"]
    s = SingleStreamSettings(min_duration_ms=duration_ms, min_query_count=1024)
    return SingleStream(s).run(sut, qsl, sink=lambda r: None).summary["queries_per_second"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=3000)
    parser.add_argument("--offline-samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"null SUT, {SAMPLES} samples loaded, min duration {args.duration_ms} ms, "
          f"offline query of {args.offline_samples:,} samples, our batch size {NullBackend.Settings().batch_size}; median of {args.repeats}")
    for scenario, unit in (("offline", "samples/s"), ("single_stream", "queries/s")):
        lg_runs, our_runs = [], []
        for _ in range(args.repeats):  # interleaved, so drift hits both alike
            lg_runs.append(loadgen(scenario, args.duration_ms, args.offline_samples))
            our_runs.append(ours(scenario, args.duration_ms, args.offline_samples))
        a, b = float(np.median(our_runs)), float(np.median(lg_runs))
        print(f"{scenario:14} infersight {a:>14,.0f} {unit}   LoadGen {b:>14,.0f} {unit}   ratio {a / b:6.2f}x")


if __name__ == "__main__":
    main()
