"""The scenario plugin interface and the settings every scenario shares.

Seeds default to MLPerf Inference v4.1's official LoadGen seeds; each random dimension has
its own. Durations are in milliseconds, timestamps in nanoseconds (`time.perf_counter_ns`).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import psutil
from pydantic import Field, model_validator

from runner.cards._base import StrictModel
from runner.loadgen.interfaces import SampleLibrary, SystemUnderTest
from runner.loadgen.result import ScenarioResult
from runner.resources import CpuMeter

__all__ = ["Scenario", "ScenarioSettings", "Progress", "Sink", "warm_up", "sample_order"]

Progress = Callable[[float, str], None]
Sink = Callable[[dict[str, np.ndarray]], None]

_RECORD_BYTES = 64  # a per-query record (five int64 columns) plus the schedule and sample order beside it
_WEEK_MS = 7 * 24 * 3600 * 1000

MLPERF_V41_SEEDS = {"qsl_rng_seed": 3066443479025735752, "sample_index_rng_seed": 10688027786191513374,
                    "schedule_rng_seed": 14962580496156340209}


class ScenarioSettings(StrictModel):
    """Settings shared by every scenario (LoadGen's TestSettings, with units in the names)."""

    min_duration_ms: int = Field(10_000, gt=0, le=_WEEK_MS, description="Minimum timed duration of the run.")
    max_duration_ms: int = Field(600_000, gt=0, le=_WEEK_MS, description="Stop issuing queries after this long.")
    warmup_duration_ms: int = Field(1_000, ge=0, le=_WEEK_MS,
                                    description="Untimed warm-up before the run (not counted).")
    qsl_rng_seed: int = Field(MLPERF_V41_SEEDS["qsl_rng_seed"], ge=0,
                              description="Seed choosing which samples are loaded for the performance run.")
    sample_index_rng_seed: int = Field(MLPERF_V41_SEEDS["sample_index_rng_seed"], ge=0,
                                       description="Seed of the order in which loaded samples are queried.")
    schedule_rng_seed: int = Field(MLPERF_V41_SEEDS["schedule_rng_seed"], ge=0,
                                   description="Seed of arrival times (server scenario).")

    @model_validator(mode="after")
    def _durations(self) -> "ScenarioSettings":
        if self.max_duration_ms < self.min_duration_ms:
            raise ValueError(f"max_duration_ms ({self.max_duration_ms}) is below min_duration_ms "
                             f"({self.min_duration_ms})")
        return self

    def planned_records(self) -> int:
        """The fewest per-query records (or samples of one query) these settings make a run hold in memory.

        Read from the settings every scenario names alike: query and sample counts, and target_qps x
        min_duration_ms for the server scenario's schedule (capped by max_query_count).
        """
        def get(name: str) -> Any:
            return getattr(self, name, 0) or 0

        queries = max(get("min_query_count"), get("session_count"),
                      math.ceil(get("target_qps") * self.min_duration_ms / 1e3))
        if get("max_query_count"):
            queries = min(queries, get("max_query_count"))
        samples = max(min(get("min_sample_count"), get("max_sample_count") or math.inf), get("samples_per_query"),
                      get("warmup_batch_samples"))
        return int(max(queries, samples))

    @model_validator(mode="after")
    def _runnable(self) -> "ScenarioSettings":
        """Refuse settings the runner cannot run: minimums beyond this machine's memory, a target QPS that
        schedules no query before max_duration_ms (checked before anything is written)."""
        qps = getattr(self, "target_qps", None)
        if qps is not None and qps * self.max_duration_ms / 1e3 < 1:
            raise ValueError(f"target_qps {qps:g} schedules no query within max_duration_ms ({self.max_duration_ms})")
        planned = self.planned_records()
        total = psutil.virtual_memory().total
        if planned * _RECORD_BYTES > total:
            raise ValueError(f"these settings need at least {planned:.3g} per-query records "
                             f"(~{planned * _RECORD_BYTES / 2**30:.3g} GiB), more than this machine's "
                             f"{total / 2**30:.3g} GiB of memory; lower the counts, durations or QPS")
        return self


class Scenario(ABC):
    """A load scenario: drives a system under test with a sample library; knows no model."""

    name: ClassVar[str]
    Settings: ClassVar[type[ScenarioSettings]] = ScenarioSettings
    quick_settings: ClassVar[dict[str, Any]] = {"min_duration_ms": 1_000, "warmup_duration_ms": 200}

    def __init__(self, settings: ScenarioSettings | None = None) -> None:
        self.settings = settings or self.Settings()

    def run(self, sut: SystemUnderTest, qsl: SampleLibrary, *, sink: Sink | None = None,
            progress: Progress | None = None) -> ScenarioResult:
        """Run the scenario to completion on the calling thread; blocks until done.

        Loads the performance sample set (chosen with qsl_rng_seed), measures, flushes the
        system under test and unloads the samples. `sink` receives the per-query records
        incrementally (so a crash keeps what was measured); `progress` receives
        (fraction done, short text) a few times a second. The summary gains the process's CPU
        utilisation over the timed part (`cpu_utilisation`, see runner.resources).
        """
        loaded = performance_set(qsl, self.settings.qsl_rng_seed)
        qsl.load_samples(loaded)
        self._cpu, self._timed = CpuMeter(), False
        self._cpu.start()
        try:
            result = self.measure(sut, loaded, sink, progress)
            result = result.with_summary(**self._cpu.result("timed part" if self._timed else "warm-up and timed part"))
            sut.flush_queries()
        finally:
            qsl.unload_samples(loaded)
        return result

    def arrange(self, cpus: list[int]) -> Any:
        """How this scenario will issue queries on `cpus` (runner.loadgen.isolation.IssuePlan), decided before
        the backend is made so that the runner can keep the backend's threads where the plan says; None for a
        scenario without an issuer of its own (the default). Raises SettingsError when `cpus` cannot hold it."""
        return None

    def timed_part_starts(self) -> None:
        """Called by `measure` when warm-up ends: the CPU utilisation in the summary covers what follows."""
        self._cpu, self._timed = CpuMeter(), True
        self._cpu.start()

    @abstractmethod
    def measure(self, sut: SystemUnderTest, loaded: np.ndarray, sink: Sink | None,
                progress: Progress | None) -> ScenarioResult:
        """Warm up and measure with the loaded samples (the scenario's own part of `run`)."""


def performance_set(qsl: SampleLibrary, seed: int) -> np.ndarray:
    """Indices of the samples loaded for a performance run, chosen with qsl_rng_seed."""
    rng = np.random.default_rng(seed)
    total, count = qsl.total_sample_count, qsl.performance_sample_count
    return np.sort(rng.permutation(total)[:count]) if count < total else np.arange(total)


def sample_order(loaded: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` sample indices drawn uniformly (with replacement) from the loaded set."""
    rng = np.random.default_rng(seed)
    return loaded[rng.integers(0, len(loaded), size=count)].astype(np.int64)


def warm_up(sut: SystemUnderTest, loaded: np.ndarray, duration_ms: int, per_query: int) -> float:
    """Issue untimed queries for `duration_ms` (at least 2); return the samples/s observed.

    The first query (cold caches, lazy initialisation) is left out of the estimate.
    """
    end = time.perf_counter_ns() + duration_ms * 1_000_000
    sut.issue_query(np.resize(loaded, per_query))
    start, done, i = time.perf_counter_ns(), 0, 1
    while i < 2 or time.perf_counter_ns() < end:
        sut.issue_query(np.resize(np.roll(loaded, -i * per_query), per_query))
        done += per_query
        i += 1
    return done * 1e9 / max(time.perf_counter_ns() - start, 1)
