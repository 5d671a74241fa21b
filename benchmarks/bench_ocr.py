"""Benchmark (n): our runner's offline throughput on the real `ocr` task (PP-OCRv4 detector + recogniser) vs a
bare onnxruntime loop over the same batches.

Same two model files, same session options (threads, optimisation level), the same pipeline code between
the two models (tasks/ocr/_pipeline.py: it is the task, not the runner), the same batches of the same
images; the bare loop calls the pipeline on two plain sessions over pre-gathered batches. Interleaved
repeats, medians, ratio runner / bare (the issue asks >= 0.97). Also prints each variant's quality.
Run: `.venv/bin/python benchmarks/bench_ocr.py` (after `make models`).
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


def bare(task, model, model_path: Path, batches: list[np.ndarray], threads: int) -> float:
    """images/s of the task's pipeline over two bare onnxruntime sessions, pre-gathered batches."""
    det = bare_session(model_path, threads)
    rec = bare_session(model_path.parent / model.parts[0].file, threads)
    models = {"main": lambda feeds: det.run(None, dict(feeds)), "rec": lambda feeds: rec.run(None, dict(feeds))}
    pipeline = task.pipeline(model)
    for b in batches[:2]:
        pipeline(models, {"image": b})
    start = time.perf_counter()
    for b in batches:
        pipeline(models, {"image": b})
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def runner(db: str, duration_ms: int, threads: int, batch: int, samples: int) -> tuple[float, int, float]:
    """images/s of `infersight run ocr --scenario offline` (through the store), its sample count and quality."""
    req = RunRequest("ocr", "onnxruntime", "offline", "fp32", {"intra_op_threads": threads, "batch_size": batch},
                     {"min_duration_ms": duration_ms, "min_sample_count": samples, "warmup_duration_ms": 500})
    store = Store(db)
    try:
        run = store.get_run(execute_run(prepare_run(req), store))
    finally:
        store.close()
    return run.headline_value, run.summary["sample_count"], run.accuracy_value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=64, help="minimum images in the offline query")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    task, model, model_path = fp32_model("ocr")
    x = task.sample_library().inputs["image"]
    db = str(Path(tempfile.mkdtemp()) / "bench.db")
    ours, base = [], []
    for _ in range(args.repeats):
        sps, n, quality = runner(db, args.duration_ms, args.threads, args.batch_size, args.samples)
        order = np.random.default_rng(0).integers(0, len(x), n)
        batches = [x[order[i:i + args.batch_size]] for i in range(0, n, args.batch_size)]
        ours.append(sps)
        base.append(bare(task, model, model_path, batches, args.threads))
    a, b = float(np.median(ours)), float(np.median(base))
    print(f"ocr fp32 offline, {args.threads} thread(s), batch {args.batch_size}, median of {args.repeats} "
          f"(character accuracy {quality:.4f})")
    print(f"runner {a:,.2f} images/s   bare onnxruntime loop {b:,.2f} images/s   ratio {a / b:.3f}")
    pairs = [o / r for o, r in zip(ours, base)]
    print(f"per repeat (runner / the bare loop right after it): {', '.join(f'{p:.3f}' for p in pairs)}; "
          f"median {float(np.median(pairs)):.3f}")


if __name__ == "__main__":
    main()
