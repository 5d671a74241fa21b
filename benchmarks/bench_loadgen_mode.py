"""Benchmark: digits fp32 measured by our load generator and by MLCommons' LoadGen (`--loadgen mlperf`).

Same backend settings, same scenario settings, interleaved repeats; prints each headline
(offline samples/s, single_stream early-stopping p90 latency) and the ratio ours / LoadGen's.
They should agree within a few percent. Run: `.venv/bin/python benchmarks/bench_loadgen_mode.py`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store


def headline(db: str, scenario: str, loadgen: str, duration_ms: int, threads: int) -> float:
    settings = {"min_duration_ms": duration_ms, "warmup_duration_ms": 500}
    settings.update({"min_sample_count": 1024} if scenario == "offline" else {"min_query_count": 1024})
    req = RunRequest("digits", "onnxruntime", scenario, "fp32", {"intra_op_threads": threads}, settings,
                     loadgen=loadgen)
    with Store(db) as store:
        return store.get_run(execute_run(prepare_run(req), store)).headline_value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    db = str(Path(tempfile.mkdtemp()) / "bench.db")
    print(f"digits fp32, {args.threads} thread(s), min duration {args.duration_ms} ms, median of {args.repeats}")
    for scenario, unit in (("offline", "samples/s"), ("single_stream", "ms (p90, early stopping)")):
        runs = {"infersight": [], "mlperf": []}
        for _ in range(args.repeats):
            for loadgen in runs:
                runs[loadgen].append(headline(db, scenario, loadgen, args.duration_ms, args.threads))
        ours, theirs = (float(np.median(runs[k])) for k in ("infersight", "mlperf"))
        print(f"{scenario:14} infersight {ours:>12,.4g}   LoadGen {theirs:>12,.4g} {unit}   ratio {ours / theirs:.3f}")


if __name__ == "__main__":
    main()
