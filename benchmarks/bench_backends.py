"""Benchmark: the fastest onnxruntime and OpenVINO configurations on digits offline, runner vs bare library loop.

First a quick search over each backend's candidate configurations (model variant x threads or
performance hint x batch size) finds the fastest by the runner's own offline headline. Then, for
each winner, interleaved repeats: our runner (`infersight run digits --scenario offline`, through
the store) and a bare loop over the library's own API with the same resolved settings (read back
from the run's backend card), over exactly the runner's batches (the sample order of its
performance log), pre-gathered. Ratio runner / bare: the issue asks >= 0.97 (overhead < 3%).
For OpenVINO with several streams the bare loop splits each batch across the infer requests as
the backend does; AsyncInferQueue pipelining across batches is printed beside it for reference.
Run: `.venv/bin/python benchmarks/bench_backends.py` (after `make models`).
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from runner import registry
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store

CANDIDATES = {
    "onnxruntime": [{"intra_op_threads": t, "batch_size": b} for t, b in itertools.product((1, 2), (32, 256))],
    "openvino": [{"performance_hint": h, "batch_size": b} for h, b in itertools.product(("latency", "throughput"),
                                                                                        (32, 256))],
}


def runner(db: str, backend: str, variant: str, settings: dict, duration_ms: int) -> dict:
    """One offline run through the runner and the store: its row, backend card and sample order."""
    scenario = {"min_duration_ms": duration_ms, "min_sample_count": 1024, "warmup_duration_ms": 500}
    with Store(db) as store:
        run = store.get_run(execute_run(prepare_run(RunRequest("digits", backend, "offline", variant, settings,
                                                               scenario)), store))
        return {**run.to_dict(), "card": store.get_card("backend", run.backend_hash),
                "order": store.read_perf_samples(run.id)["sample_index"]}


def fastest(db: str, backend: str, duration_ms: int) -> tuple[str, dict, float]:
    """The (variant, settings) with the highest runner throughput in a quick search."""
    best = ("", {}, 0.0)
    for variant, settings in itertools.product(("fp32", "int8"), CANDIDATES[backend]):
        sps = runner(db, backend, variant, settings, duration_ms)["headline_value"]
        print(f"  {backend:11} {variant} {settings}: {sps:,.0f} samples/s", flush=True)
        if sps > best[2]:
            best = (variant, settings, sps)
    return best


def bare_onnxruntime(model_path: Path, batches: list[np.ndarray], s: dict) -> float:
    """samples/s of InferenceSession.run over pre-gathered batches, with the run's resolved settings."""
    import onnxruntime as ort

    from runner.backends.onnxruntime.backend import _LEVELS

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = s["intra_op_threads"], s["inter_op_threads"]
    opts.graph_optimization_level = _LEVELS[s["graph_optimization_level"]]
    session = ort.InferenceSession(str(model_path), opts, providers=s["providers"])
    run = session.run
    return _timed(lambda b: run(None, {"image": b}), batches)


def _ov_compiled(model_path: Path, s: dict):
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    config = {hints.performance_mode: getattr(hints.PerformanceMode, s["performance_hint"].upper()),
              props.num_streams: s["num_streams"], props.inference_num_threads: s["inference_num_threads"],
              hints.inference_precision: getattr(ov.Type, s["inference_precision_hint"])}
    core = ov.Core()
    return core.compile_model(core.read_model(str(model_path)), "CPU", config)


def bare_openvino(model_path: Path, batches: list[np.ndarray], s: dict) -> float:
    """samples/s of infer requests over pre-gathered batches (split across the requests, as the backend does)."""
    compiled = _ov_compiled(model_path, s)
    requests = [compiled.create_infer_request() for _ in range(s["infer_requests"])]
    if len(requests) == 1:
        infer = requests[0].infer
        return _timed(lambda b: infer({0: b}, share_inputs=True), batches)

    def split(b: np.ndarray) -> None:
        bounds = np.linspace(0, len(b), min(len(b), len(requests)) + 1).astype(int)
        for req, lo, hi in zip(requests, bounds[:-1], bounds[1:]):
            req.start_async({0: b[lo:hi]}, share_inputs=True)
        for req in requests[:len(bounds) - 1]:
            req.wait()
    return _timed(split, batches)


def async_queue_openvino(model_path: Path, batches: list[np.ndarray], s: dict) -> float:
    """samples/s of AsyncInferQueue over whole batches (pipelined across batches; for reference)."""
    import openvino as ov

    queue = ov.AsyncInferQueue(_ov_compiled(model_path, s), max(2, s["infer_requests"]))

    def run_all(_: np.ndarray) -> None:
        for b in batches:
            queue.start_async({0: b}, share_inputs=True)
        queue.wait_all()
    start = time.perf_counter()
    run_all(batches[0])
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def _timed(call, batches: list[np.ndarray]) -> float:
    for b in batches[:20]:
        call(b)
    start = time.perf_counter()
    for b in batches:
        call(b)
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def compare(db: str, backend: str, variant: str, settings: dict, args: argparse.Namespace) -> None:
    """Interleaved repeats of the runner and the bare loop on the winning configuration; print the medians."""
    _, model_path = registry.get("task", "digits")().model_card(variant)
    x = registry.get("task", "digits")().sample_library().inputs["image"]
    bare = bare_onnxruntime if backend == "onnxruntime" else bare_openvino
    ours, base, extra = [], [], []
    for _ in range(args.repeats):
        run = runner(db, backend, variant, settings, args.duration_ms)
        s = run["card"]["settings"]
        batches = [x[run["order"][i:i + s["batch_size"]]] for i in range(0, len(run["order"]), s["batch_size"])]
        ours.append(run["headline_value"])
        base.append(bare(model_path, batches, s))
        if backend == "openvino":
            extra.append(async_queue_openvino(model_path, batches, s))
    a, b = float(np.median(ours)), float(np.median(base))
    ratios = [o / r for o, r in zip(ours, base)]
    print(f"{backend} fastest: digits {variant} {settings} -> resolved {_brief(s)}; median of {args.repeats}")
    print(f"  runner {a:,.0f} samples/s   bare {backend} loop {b:,.0f} samples/s   ratio {a / b:.3f}"
          f"   (overhead {100 * (1 - a / b):+.1f}%)")
    print(f"  paired ratios (runner / the bare loop right after it): median {float(np.median(ratios)):.3f}, "
          f"each {', '.join(f'{r:.3f}' for r in ratios)}")
    if extra:
        print(f"  for reference: AsyncInferQueue pipelined across batches {float(np.median(extra)):,.0f} samples/s")


def _brief(s: dict) -> str:
    keys = ("batch_size", "intra_op_threads", "performance_hint", "num_streams", "inference_num_threads",
            "inference_precision_hint", "infer_requests")
    return ", ".join(f"{k}={s[k]}" for k in keys if k in s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search-ms", type=int, default=1500, help="min duration of each search run")
    parser.add_argument("--duration-ms", type=int, default=5000, help="min duration of each compared run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=sorted(CANDIDATES), action="append")
    args = parser.parse_args(argv)
    db = str(Path(tempfile.mkdtemp()) / "bench.db")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work skews the figures)")
    for backend in args.backend or sorted(CANDIDATES):
        print(f"searching the fastest {backend} configuration on digits offline:", flush=True)
        variant, settings, _ = fastest(db, backend, args.search_ms)
        compare(db, backend, variant, settings, args)


if __name__ == "__main__":
    main()
