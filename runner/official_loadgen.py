"""Run our backend and task under MLCommons' official LoadGen (`infersight run ... --loadgen mlperf`).

For users who need compliance-grade timing: LoadGen (PyPI `mlcommons-loadgen`) schedules the
queries and writes its own logs; we answer its callbacks with the same system under test and
sample library our own load generator uses, then read LoadGen's summary back with the MLPerf
importer's parser. The accuracy log comes from a second LoadGen pass in AccuracyOnly mode: our
responses carry the output bytes, which LoadGen writes to mlperf_log_accuracy.json and we score.
Per-query records are our own timestamps taken in the callback (LoadGen does not expose its
scheduled times), so `scheduled_ns` equals `issued_ns` there.

Server: LoadGen issues each query from its own thread at its Poisson-scheduled time; the callback
only queues it, and `concurrency` worker threads (as in our server scenario: default the CPUs the
run may use) serve the queue, so LoadGen's issuing is never held up by the system. LoadGen keeps
its verdict (it counts latency from its own scheduled times); our records count from the callback.
"""

from __future__ import annotations

import json
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from runner.errors import SettingsError
from runner.loadgen.result import ScenarioResult, latency_summary
from runner.scenarios.base import Sink, performance_set, warm_up
from runner.sut import BackendSUT
from runner.task import AccuracyResult

__all__ = ["run_official", "loadgen_version", "check_settings", "SUPPORTED"]

SUPPORTED = ("single_stream", "multi_stream", "offline", "server")


def _lg():
    try:
        import mlperf_loadgen
    except ImportError:
        raise SettingsError("--loadgen mlperf needs MLCommons LoadGen: pip install mlcommons-loadgen "
                            "(it comes with `make setup`)") from None
    return mlperf_loadgen


def check_settings(scenario: str, settings: Any) -> None:
    """Refuse settings LoadGen cannot run (several concurrent streams: LoadGen's MultiStream has one)."""
    streams = getattr(settings, "streams", 1)
    if streams > 1:
        raise SettingsError(f"--loadgen mlperf runs {scenario} with one stream (LoadGen's MultiStream), "
                            f"not streams={streams}; use our load generator for several streams")


def loadgen_version() -> str:
    from runner.backends.base import distribution_version
    return distribution_version("mlcommons-loadgen")


class _Bridge:
    """LoadGen's issue callback in front of our system under test; records per-query timestamps."""

    def __init__(self, lg: Any, sut: BackendSUT, keep_outputs: bool) -> None:
        self.lg, self.sut, self.keep = lg, sut, keep_outputs
        self.index: list[np.ndarray] = []
        self.issued: list[int] = []
        self.completed: list[tuple[int, int]] = []
        self.shapes: dict[int, tuple[int, ...]] = {}  # sample index -> its kept output row's shape (accuracy pass)

    def issue_queries(self, query_samples: list[Any]) -> None:
        issued = time.perf_counter_ns()
        index = np.fromiter((q.index for q in query_samples), dtype=np.int64, count=len(query_samples))
        ids = [q.id for q in query_samples]
        bs = self.sut.batch_size
        for lo in range(0, len(index), bs):
            outputs = self.sut.backend.run_batch(self.sut.qsl.get(index[lo:lo + bs]))
            self._complete(ids[lo:lo + bs], index[lo:lo + bs], outputs[0] if self.keep else None)
            self.completed.append((min(bs, len(index) - lo), time.perf_counter_ns()))
        self.index.append(index)
        self.issued.append(issued)

    def _complete(self, ids: list[int], index: np.ndarray, outputs: np.ndarray | None) -> None:
        lg = self.lg
        if outputs is None:
            lg.QuerySamplesComplete([lg.QuerySampleResponse(i, 0, 0) for i in ids])
            return
        rows = [np.ascontiguousarray(row) for row in outputs]  # alive until LoadGen has copied them
        # LoadGen logs a row's bytes only: its shape (a dynamic axis such as charlm's time steps) is kept here
        self.shapes.update((int(i), r.shape) for i, r in zip(index, rows))
        lg.QuerySamplesComplete([lg.QuerySampleResponse(i, r.ctypes.data, r.nbytes) for i, r in zip(ids, rows)])

    def records(self) -> dict[str, np.ndarray]:
        counts = [len(i) for i in self.index]
        issued = np.repeat(np.asarray(self.issued, dtype=np.int64), counts)
        done = np.repeat(np.asarray([t for _, t in self.completed], dtype=np.int64), [n for n, _ in self.completed])
        return {"sample_index": np.concatenate(self.index) if self.index else np.empty(0, np.int64),
                "query_index": np.repeat(np.arange(len(counts), dtype=np.int64), counts),
                "scheduled_ns": issued, "issued_ns": issued, "completed_ns": done}


class _ServerBridge(_Bridge):
    """Server: the callback queues the query (LoadGen's issuing thread never waits on the system) and
    `workers` threads serve the queue; each query's (samples, issued, completed) is one record."""

    def __init__(self, lg: Any, sut: BackendSUT, keep_outputs: bool, workers: int) -> None:
        super().__init__(lg, sut, keep_outputs)
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.done: list[tuple[np.ndarray, int, int]] = []
        self.threads = [threading.Thread(target=self._serve, name=f"loadgen-server-{w}", daemon=True)
                        for w in range(workers)]
        for t in self.threads:
            t.start()

    def issue_queries(self, query_samples: list[Any]) -> None:
        self.queue.put((time.perf_counter_ns(), [(q.id, q.index) for q in query_samples]))

    def _serve(self) -> None:
        while (item := self.queue.get()) is not None:
            issued, samples = item
            index = np.fromiter((i for _, i in samples), dtype=np.int64, count=len(samples))
            outputs = self.sut.backend.run_batch(self.sut.qsl.get(index))
            self._complete([q for q, _ in samples], index, outputs[0] if self.keep else None)
            self.done.append((index, issued, time.perf_counter_ns()))

    def close(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for t in self.threads:
            t.join()

    def records(self) -> dict[str, np.ndarray]:
        done = sorted(self.done, key=lambda d: d[1])
        counts = [len(i) for i, _, _ in done]
        issued = np.repeat(np.asarray([t for _, t, _ in done], dtype=np.int64), counts)
        return {"sample_index": np.concatenate([i for i, _, _ in done]) if done else np.empty(0, np.int64),
                "query_index": np.repeat(np.arange(len(counts), dtype=np.int64), counts), "scheduled_ns": issued,
                "issued_ns": issued, "completed_ns": np.repeat(np.asarray([t for _, _, t in done], dtype=np.int64),
                                                               counts)}


def _bridge(lg: Any, sut: BackendSUT, keep_outputs: bool, scenario: str, s: Any) -> _Bridge:
    if scenario != "server":
        return _Bridge(lg, sut, keep_outputs)
    from runner.cpus import available_cpus

    return _ServerBridge(lg, sut, keep_outputs, s.concurrency or len(available_cpus()))


# LoadGen pre-generates the queries of SingleStream and MultiStream from the expected latency and
# stops when they run out: a warm-up slower than the timed run (a busy machine that quietens) leaves
# it short of min_duration ("Decrease the expected latency so the loadgen pre-generates more
# queries"). Telling it a latency this many times lower costs only a longer query list: it still
# stops once min_duration and min_query_count are both met.
PREGENERATE_MARGIN = 4.0


def _settings(lg: Any, scenario: str, s: Any, expected: float, accuracy: bool) -> Any:
    ts = lg.TestSettings()
    ts.mode = lg.TestMode.AccuracyOnly if accuracy else lg.TestMode.PerformanceOnly
    ts.min_duration_ms, ts.max_duration_ms = s.min_duration_ms, s.max_duration_ms
    ts.qsl_rng_seed, ts.sample_index_rng_seed = s.qsl_rng_seed, s.sample_index_rng_seed
    ts.schedule_rng_seed = s.schedule_rng_seed
    if scenario == "offline":
        ts.scenario = lg.TestScenario.Offline
        ts.offline_expected_qps = max(expected * 1.5 / 1.1, s.min_sample_count * 1000 / s.min_duration_ms / 1.1)
        ts.min_query_count = 1
    elif scenario == "server":
        ts.scenario = lg.TestScenario.Server
        ts.server_target_qps = s.target_qps
        ts.server_target_latency_ns = int(s.latency_bound_ms * 1e6)
        ts.server_target_latency_percentile = s.target_latency_percentile / 100
        ts.min_query_count = s.min_query_count
        if s.max_query_count:
            ts.max_query_count = s.max_query_count
    elif scenario == "multi_stream":
        ts.scenario = lg.TestScenario.MultiStream
        ts.multi_stream_samples_per_query = s.samples_per_query
        ts.multi_stream_expected_latency_ns = max(int(s.samples_per_query * 1e9 / expected / PREGENERATE_MARGIN), 1)
        ts.multi_stream_target_latency_percentile = s.target_latency_percentile / 100
        ts.min_query_count = s.min_query_count
    else:
        ts.scenario = lg.TestScenario.SingleStream
        ts.single_stream_expected_latency_ns = max(int(1e9 / expected / PREGENERATE_MARGIN), 1)
        ts.single_stream_target_latency_percentile = s.target_latency_percentile / 100
        ts.min_query_count = s.min_query_count
    return ts


def _start(lg: Any, bridge: _Bridge, qsl: Any, settings: Any, out: Path) -> None:
    sut = lg.ConstructSUT(bridge.issue_queries, lambda: None)
    lg_qsl = lg.ConstructQSL(qsl.total_sample_count, qsl.performance_sample_count,
                             lambda ids: qsl.load_samples(np.asarray(ids)), lambda ids: qsl.unload_samples(np.asarray(ids)))
    out.mkdir(parents=True, exist_ok=True)
    log = lg.LogSettings()
    log.log_output.outdir = str(out)
    log.log_output.copy_summary_to_stdout = False
    try:
        lg.StartTestWithLogSettings(sut, lg_qsl, settings, log)
    finally:
        if isinstance(bridge, _ServerBridge):
            bridge.close()
        lg.DestroyQSL(lg_qsl)
        lg.DestroySUT(sut)


def run_official(prep: Any, sut: BackendSUT, sink: Sink) -> tuple[ScenarioResult, AccuracyResult, Path]:
    """Performance and accuracy passes under LoadGen; returns our result, the accuracy and the log folder."""
    lg, name, s = _lg(), prep.scenario.name, prep.scenario.settings
    if name not in SUPPORTED:
        raise SettingsError(f"--loadgen mlperf supports {', '.join(SUPPORTED)}, not {name!r}")
    per_query = {"single_stream": 1, "server": 1, "multi_stream": getattr(s, "samples_per_query", 8)}.get(
        name, getattr(s, "warmup_batch_samples", 256))
    expected = warm_up(sut, performance_set(sut.qsl, s.qsl_rng_seed), s.warmup_duration_ms, per_query)
    logs = Path(tempfile.mkdtemp(prefix="infersight-loadgen-"))
    bridge = _bridge(lg, sut, False, name, s)
    _start(lg, bridge, sut.qsl, _settings(lg, name, s, expected, False), logs / "performance")
    records = bridge.records()
    sink(records)
    result = _result(prep, logs / "performance", records)
    accuracy = _accuracy(lg, prep, sut, expected, logs / "accuracy")
    return result, accuracy, logs


def _result(prep: Any, folder: Path, records: dict[str, np.ndarray]) -> ScenarioResult:
    from runner.importers.mlperf.summary import parse_summary

    text = (folder / "mlperf_log_summary.txt").read_text()
    parsed = parse_summary(text, str(folder / "mlperf_log_summary.txt"))
    name, s = prep.scenario.name, prep.scenario.settings
    valid = parsed["result_validity"] == "VALID"
    if name == "offline":
        metric, value, units = "samples_per_second", float(parsed["headline"]["value"]), "samples/s"
    elif name == "server":
        metric, value, units = "queries_per_second", s.target_qps if valid else None, "queries/s"
    else:
        pct = f"{s.target_latency_percentile:g}"
        estimate = parsed["early_stopping"].get("latency", {}).get(pct)
        metric, value, units = f"latency_p{pct}_ms", None if estimate is None else estimate / 1e6, "ms"
    reasons = [f"LoadGen: {cond} not satisfied" for cond, ok in parsed["satisfied"].items() if not ok]
    reasons += [f"LoadGen recommends: {r}" for r in parsed["recommendations"]]
    lat = records["completed_ns"] - records["scheduled_ns"]
    span = int(records["completed_ns"].max() - records["issued_ns"].min())
    summary = {"query_count": int(len(np.unique(records["query_index"]))), "sample_count": int(len(lat)),
               "duration_ns": span, "loadgen": "mlperf", "loadgen_version": loadgen_version(),
               "loadgen_summary": text, **latency_summary(lat)}
    return ScenarioResult(name, metric, value, units, valid, reasons if not valid else [], summary,
                          {**s.to_dict(), "loadgen": "mlperf"}, records)


def _accuracy(lg: Any, prep: Any, sut: BackendSUT, expected: float, folder: Path) -> AccuracyResult:
    bridge = _bridge(lg, sut, True, prep.scenario.name, prep.scenario.settings)
    _start(lg, bridge, sut.qsl, _settings(lg, prep.scenario.name, prep.scenario.settings, expected, True), folder)
    entries = json.loads((folder / "mlperf_log_accuracy.json").read_text() or "[]")
    dtype = prep.model.outputs[0].dtype
    by_index = {e["qsl_idx"]: np.frombuffer(bytes.fromhex(e["data"]), dtype=dtype).reshape(bridge.shapes[e["qsl_idx"]])
                for e in entries}
    index = np.array(sorted(by_index), dtype=np.int64)
    return prep.task.evaluate(index, [np.stack([by_index[i] for i in index])], prep.model)
