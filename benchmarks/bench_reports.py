"""Time the quarterly trend report over a store of 10,000 runs, against the run report in the same store.

Run: .venv/bin/python benchmarks/bench_reports.py [--runs N] [--queries Q] [--repeat K] [--keep DIR]

A synthetic SQLite store is built quickly (cards through the Store, the runs in one bulk insert):
N complete runs over 12 quarters (2023Q4..2026Q3) of 2 tasks x 2 scenarios x 6 systems x 2
backends x 2 model variants x 2 thread settings (96 series, 192 configurations), each with a realistic
summary and settings; their headline figures carry 2% noise, and a third of the configurations are
flat, a third step by -20% or +25% once, a third drift by about 2% a quarter. One more
run holds Q per-query records (single_stream latencies) for the baseline: the run report of that
run, the report the CLI writes most, generated in the same process on the same store.

The issue's figures: the trend report (`infersight report trend --quarter 2026Q3`) over 10,000 runs
in under 10 s, its file under 5 MB. The median of K repeats of each is printed with their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.load import runs_frame  # noqa: E402
from analysis.trend import trend  # noqa: E402
from reports.run import render_run_report  # noqa: E402
from reports.trend import render_trend_report  # noqa: E402
from runner.store import Store  # noqa: E402
from runner.store.schema import runs as runs_table  # noqa: E402

QUARTERS = pd.period_range("2023Q4", "2026Q3", freq="Q")
TASKS = {"digits": ("offline", "single_stream"), "charlm": ("offline", "server")}
HEADLINE = {"offline": ("samples_per_second", "samples/s"), "single_stream": ("latency_p90_ms", "ms"),
            "server": ("queries_per_second", "queries/s")}
SYSTEMS = [f"bench-host-{i} (AMD EPYC)" for i in range(6)]
BACKENDS, VARIANTS, THREADS = ("onnxruntime", "openvino"), ("fp32", "int8"), (1, 2)
LIMIT_S, LIMIT_BYTES = 10.0, 5_000_000


def _cards(store: Store) -> dict[tuple, dict[str, str]]:
    """Card hashes per (task, variant, system, backend): minimal cards, one per kind and value."""
    def put(kind: str, card: dict) -> str:
        digest = hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()
        return store.put_card(kind, card, digest, kind)

    hashes = {}
    for task in TASKS:
        task_hash = put("task", {"name": task, "version": "1.0.0"})
        for variant in VARIANTS:
            model = put("model", {"task": task, "variant": variant, "precision": variant})
            for s, system in enumerate(SYSTEMS):
                sys_hash = put("system", {"system_name": system, "cpu_count_used": 2 + s % 3})
                for backend in BACKENDS:
                    hashes[(task, variant, system, backend)] = {
                        "task_hash": task_hash, "model_hash": model, "system_hash": sys_hash,
                        "backend_hash": put("backend", {"backend": backend, "runtime_version": "1.0"})}
    return hashes


def _level(rng: np.random.Generator, scenario: str) -> float:
    return float(rng.lognormal(np.log(2.0), 0.5) if scenario == "single_stream" else rng.lognormal(np.log(5000), 0.8))


def synthetic_rows(store: Store, n: int, seed: int = 0) -> list[dict]:
    """n run rows spread evenly over every series and quarter, with trends, steps and 2% noise."""
    rng = np.random.default_rng(seed)
    hashes = _cards(store)
    series = [(t, sc, v, sy, b, th) for t, scs in TASKS.items() for sc in scs for v in VARIANTS for sy in SYSTEMS
              for b in BACKENDS for th in THREADS]
    per_series = np.full(len(series), n // len(series))
    per_series[: n % len(series)] += 1
    rows, start = [], datetime(2023, 10, 1, tzinfo=timezone.utc)
    span_s = (QUARTERS[-1].end_time - QUARTERS[0].start_time).total_seconds()
    for i, ((task, scenario, variant, system, backend, threads), count) in enumerate(zip(series, per_series)):
        base, shape = _level(rng, scenario), i % 3  # a third flat, a third with a step, a third drifting
        growth = rng.normal(0.02, 0.01) if shape == 2 else 0.0
        step_at, step = rng.uniform(0.3, 0.9), (rng.choice([0.8, 1.25]) if shape == 1 else 1.0)
        metric, units = HEADLINE[scenario]
        for when in np.sort(rng.uniform(0, 1, count)):
            value = base * (1 + growth) ** (when * len(QUARTERS)) * (step if when > step_at else 1.0)
            value *= rng.normal(1, 0.02)
            started = start + timedelta(seconds=float(when * span_s))
            rows.append(_row(hashes[(task, variant, system, backend)], task, scenario, variant, backend, threads,
                             metric, units, value, started))
    return rows


def _row(hashes: dict[str, str], task: str, scenario: str, variant: str, backend: str, threads: int, metric: str,
         units: str, value: float, started: datetime) -> dict:
    settings = {"backend": {"intra_op_threads": threads, "batch_size": 32}, "loadgen": "infersight",
                "scenario": {"min_duration_ms": 10000, "schedule_rng_seed": 14962580496156340209}}
    summary = {metric: value, "query_count": 5000, "sample_count": 5000, "duration_ns": 10_000_000_000,
               "cpu_utilisation": 0.93, "peak_rss_bytes": 250_000_000}
    return dict(uuid=str(uuid.uuid4()), task_name=task, task_version="1.0.0",
                model_variant=variant, backend_name=backend, scenario=scenario, status="complete", validity="VALID",
                validity_reasons=[], headline_metric=metric, headline_value=float(value), headline_units=units,
                summary=summary, settings=settings, quick=False, compliant=True, accuracy_metric="top1_accuracy",
                accuracy_value=0.98, accuracy_target=0.97, accuracy_passed=True, provenance="measured",
                source="bench", hostname="bench", pid=None, started_at=started,
                finished_at=started + timedelta(seconds=12), **hashes)


def build(path: Path, n: int, queries: int) -> tuple[int, float]:
    """The synthetic store at `path`; (the id of the run with per-query records, seconds to build)."""
    started = time.perf_counter()
    with Store(str(path)) as store:
        rows = synthetic_rows(store, n)
        with store.engine.begin() as conn:
            conn.execute(runs_table.insert(), rows)
        key = (rows[0]["task_hash"], rows[0]["model_hash"], rows[0]["backend_hash"], rows[0]["system_hash"])
        run_id = store.create_run(task_name="digits", task_version="1.0.0", model_variant="fp32",
                                  backend_name="onnxruntime", scenario="single_stream", settings=rows[0]["settings"],
                                  card_hashes=dict(zip(("task", "model", "backend", "system"), key)), quick=False,
                                  compliant=True)
        latency = np.random.default_rng(1).lognormal(np.log(2e6), 0.3, queries).astype(np.int64)
        scheduled = np.cumsum(latency) - latency
        store.append_perf_samples(run_id, {"sample_index": np.arange(queries) % 1797, "query_index": np.arange(queries),
                                           "scheduled_ns": scheduled, "issued_ns": scheduled + 5_000,
                                           "completed_ns": scheduled + latency})
        store.finish_run(run_id, status="complete", validity="VALID", headline_metric="latency_p90_ms",
                         headline_value=float(np.quantile(latency, 0.9) / 1e6), headline_units="ms",
                         summary={"latency_p50_ms": float(np.median(latency) / 1e6), "query_count": queries})
    return run_id, time.perf_counter() - started


def timed(render, repeat: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds of `repeat` calls, and the size of the last result (UTF-8 bytes)."""
    wall, cpu, size = [], [], 0
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = render()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        size = len(result.encode()) if isinstance(result, str) else 0
    return statistics.median(wall), statistics.median(cpu), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="Build the store in this folder and keep it.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "bench-reports.db"
        path.unlink(missing_ok=True)
        run_id, built = build(path, args.runs, args.queries)
        print(f"store: {args.runs:,} synthetic runs + 1 run of {args.queries:,} per-query records, "
              f"built in {built:.1f} s")
        with Store(str(path)) as store:
            render_run_report(store, run_id)  # the Vega bundle cache and imports, outside the timing
            base = timed(lambda: render_run_report(store, run_id), args.repeat)
            report = timed(lambda: render_trend_report(store, "2026Q3"), args.repeat)
            stats_only = timed(lambda: trend(runs_frame(store), "quarter"), args.repeat)
    print(f"run report (baseline, {args.queries:,} queries): {base[0]:6.2f} s ({base[1]:.2f} s CPU)  "
          f"{base[2] / 1e6:5.2f} MB")
    print(f"trend report 2026Q3 ({args.runs:,} runs):      {report[0]:6.2f} s ({report[1]:.2f} s CPU)  "
          f"{report[2] / 1e6:5.2f} MB")
    print(f"  of which the statistics (analysis.load.runs_frame + analysis.trend.trend): {stats_only[0]:.2f} s "
          f"({stats_only[1]:.2f} s CPU)")
    print(f"ratio trend / run report: time {report[0] / base[0]:.2f}x (CPU {report[1] / base[1]:.2f}x), "
          f"size {report[2] / base[2]:.2f}x")
    verdict = "PASS" if report[0] < LIMIT_S and report[2] < LIMIT_BYTES else "FAIL"
    print(f"issue figures (< {LIMIT_S:g} s, < {LIMIT_BYTES / 1e6:g} MB over 10,000 runs): {verdict} "
          f"(wall clock; on a loaded machine the CPU time is the steadier figure)")


if __name__ == "__main__":
    main()
