"""Helpers shared by the benchmarks that drive the null backend and MLCommons LoadGen side by side.

null_card() is the model card of a model that is never read, null_sut() the null backend over
SAMPLES zero samples behind our system under test, loadgen_summary() one LoadGen performance run
over a no-op SUT (every query completed at once) and its mlperf_log_summary.txt, parse_args() the
command line of a comparison with --duration-ms and --repeats, print_calibration() the machine's timing
calibration (issuer spin, pinned or floating) and load. The benchmark
scripts import this module by name: their folder is first on sys.path when they run as scripts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from runner.backends.null import NullBackend
from runner.cards import ModelCard
from runner.sut import BackendSUT
from runner.task import ArraySampleLibrary

__all__ = ["SAMPLES", "loadgen_summary", "null_card", "null_sut", "parse_args", "print_calibration"]

SAMPLES = 1024
_X = [{"name": "x", "dtype": "float32", "shape": ["batch", 1]}]
_Y = [{"name": "y", "dtype": "float32", "shape": ["batch", 1]}]


def null_card(inputs: list[dict[str, Any]] = _X, outputs: list[dict[str, Any]] = _Y,
              operators: tuple[str, ...] = ("Identity",)) -> ModelCard:
    """A model card for the null backend (no file is read): by default one float32 input `x` [batch, 1]."""
    return ModelCard.model_validate({
        "task": "null", "task_version": "1.0.0", "name": "null", "variant": "fp32", "file": "none",
        "sha256": "0" * 64, "size_bytes": 1, "precision": "fp32", "opset": 17, "operators": list(operators),
        "build": {"script": "none", "seed": 0}, "inputs": inputs, "outputs": outputs,
        "reference_quality": {"metric": "none", "value": 0, "samples": 1, "fp32_reference": 0}})


def null_sut() -> tuple[BackendSUT, ArraySampleLibrary]:
    """Our system under test on the null backend (its default settings) and its library of SAMPLES zeros."""
    backend = NullBackend()
    backend.prepare(null_card(), Path("none"))
    qsl = ArraySampleLibrary({"x": np.zeros((SAMPLES, 1), np.float32)}, SAMPLES)
    return BackendSUT(backend, qsl), qsl


def loadgen_summary(scenario: str, *, issued_ns: list[int] | None = None, prefix: str = "lg-",
                    **settings: Any) -> str:
    """The mlperf_log_summary.txt of one LoadGen PerformanceOnly run over a SUT that completes every query at
    once, with SAMPLES samples in its library.

    `scenario` names a lg.TestScenario member (e.g. "Offline", "MultiStream"); `settings` are set on
    lg.TestSettings as they are; `issued_ns`, when given, gets time.perf_counter_ns() at each issue callback.
    """
    import mlperf_loadgen as lg

    if issued_ns is None:
        def issue(query_samples):
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in query_samples])
    else:
        def issue(query_samples):
            issued_ns.append(time.perf_counter_ns())
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in query_samples])

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(SAMPLES, SAMPLES, lambda s: None, lambda s: None)
    s = lg.TestSettings()
    s.scenario, s.mode = getattr(lg.TestScenario, scenario), lg.TestMode.PerformanceOnly
    for name, value in settings.items():
        setattr(s, name, value)
    out = tempfile.mkdtemp(prefix=prefix)
    log = lg.LogSettings()
    log.log_output.outdir, log.log_output.copy_summary_to_stdout = out, False
    lg.StartTestWithLogSettings(sut, qsl, s, log)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    return Path(out, "mlperf_log_summary.txt").read_text()


def parse_args(doc: str, argv: list[str] | None, **options: int) -> argparse.Namespace:
    """The command line of a comparison (description: the first line of `doc`): --duration-ms (default 3000),
    each of `options` as an integer option with that default (offline_samples=... is --offline-samples), then
    --repeats (default 3). Sets OMP_NUM_THREADS to 1 unless it is set."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=3000)
    for name, default in options.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return args


def print_calibration() -> None:
    """Print the timing calibration the server runs will use (runner.loadgen.calibration) and the load now."""
    from runner.loadgen.calibration import calibration

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    c = calibration(cpu=cpus[-1])
    trial = c.issuer_trial_us or {}
    print(f"calibration ({c.source}, measured {c.measured_at} at load {c.load_1m} on {c.cpus} CPUs): sleep overshoot "
          f"p50 {c.sleep_overshoot_us['p50']:.3g} / p99 {c.sleep_overshoot_us['p99']:.3g} / p99.9 "
          f"{c.sleep_overshoot_us['p99_9']:.3g} us -> spin {c.spin_us:g} us; issuer {c.issuer_pinning}"
          + "".join(f", {m} p99 late {f['p99']:.3g} us" for m, f in trial.items())
          + (f"; {c.note}" if c.note else "") + f"; machine load now {os.getloadavg()[0]:.2f}", flush=True)

