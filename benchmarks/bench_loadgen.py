"""Benchmark (a): the null backend driven by our runner vs a no-op SUT driven by MLCommons' LoadGen.

Both in the same process and run, same sample library size, same minimum duration:
offline samples/s and single_stream queries/s, printed as ratios ours / LoadGen (>= 1 is
what the foundation issue asks). Run: `.venv/bin/python benchmarks/bench_loadgen.py`.
"""

from __future__ import annotations

import re

import numpy as np
from _loadgen_util import SAMPLES, loadgen_summary, null_sut, parse_args

from runner.backends.null import NullBackend
from runner.scenarios.offline import Offline, OfflineSettings
from runner.scenarios.single_stream import SingleStream, SingleStreamSettings


def loadgen(scenario: str, duration_ms: int, offline_samples: int) -> float:
    """Offline samples/s or single-stream queries/s ("QPS w/ loadgen overhead") of LoadGen's null SUT."""
    text = loadgen_summary("Offline" if scenario == "offline" else "SingleStream", min_duration_ms=duration_ms,
                           min_query_count=offline_samples if scenario == "offline" else 1024,
                           offline_expected_qps=offline_samples * 1000 / duration_ms / 1.1,
                           single_stream_expected_latency_ns=2_000)
    number = r"\s*:\s*([0-9.eE+-]+)"
    key = ("Samples per second" if scenario == "offline" else "QPS w/ loadgen overhead") + number
    return float(re.search(key, text).group(1))


def ours(scenario: str, duration_ms: int, offline_samples: int) -> float:
    """The same figure from our runner on the null backend (default batch size 32: the system batches,
    LoadGen answers per sample)."""
    sut, qsl = null_sut()
    if scenario == "offline":
        s = OfflineSettings(min_duration_ms=duration_ms, min_sample_count=offline_samples,
                            max_sample_count=offline_samples, expected_qps=offline_samples * 1000 / duration_ms / 1.1)
        return Offline(s).run(sut, qsl, sink=lambda r: None).summary["samples_per_second"]
    s = SingleStreamSettings(min_duration_ms=duration_ms, min_query_count=1024)
    return SingleStream(s).run(sut, qsl, sink=lambda r: None).summary["queries_per_second"]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__, argv, offline_samples=1_000_000)
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
