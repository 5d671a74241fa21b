"""Benchmark (b): our runner's offline throughput on digits fp32 vs a bare onnxruntime loop.

Same model file, same session options (threads, optimisation level), same batches of the
same samples; the bare loop just calls session.run over pre-gathered batches. Interleaved
repeats, medians, ratio runner / bare (the foundation issue asks >= 0.97).
Run: `.venv/bin/python benchmarks/bench_onnxruntime.py` (after `make models`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _ort_util import bare_session, fp32_model

from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store


def bare(model_path: Path, batches: list[np.ndarray], threads: int) -> float:
    """samples/s of session.run over pre-gathered batches."""
    session = bare_session(model_path, threads)
    for b in batches[:20]:
        session.run(None, {"image": b})
    start = time.perf_counter()
    for b in batches:
        session.run(None, {"image": b})
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def runner(db: str, duration_ms: int, threads: int, batch: int) -> tuple[float, int]:
    """samples/s of `infersight run digits --scenario offline` (through the store) and its sample count."""
    req = RunRequest("digits", "onnxruntime", "offline", "fp32",
                     {"intra_op_threads": threads, "batch_size": batch},
                     {"min_duration_ms": duration_ms, "min_sample_count": 1024, "warmup_duration_ms": 500})
    store = Store(db)
    try:
        run = store.get_run(execute_run(prepare_run(req), store))
    finally:
        store.close()
    return run.headline_value, run.summary["sample_count"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    task, _, model_path = fp32_model("digits")
    x = task.sample_library().inputs["image"]
    db = str(Path(tempfile.mkdtemp()) / "bench.db")
    ours, base = [], []
    for _ in range(args.repeats):
        sps, n = runner(db, args.duration_ms, args.threads, args.batch_size)
        order = np.random.default_rng(0).integers(0, len(x), n)
        batches = [x[order[i:i + args.batch_size]] for i in range(0, n, args.batch_size)]
        ours.append(sps)
        base.append(bare(model_path, batches, args.threads))
    a, b = float(np.median(ours)), float(np.median(base))
    print(f"digits fp32 offline, {args.threads} thread(s), batch {args.batch_size}, median of {args.repeats}")
    print(f"runner {a:,.0f} samples/s   bare onnxruntime loop {b:,.0f} samples/s   ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
