"""single_stream and offline on the null backend: semantics, validity and reasons, seeds."""

import time

import numpy as np
import pytest

from runner.backends.null import NullBackend
from runner.sut import BackendSUT

from runner.scenarios.offline import Offline, OfflineSettings
from runner.scenarios.single_stream import SingleStream, SingleStreamSettings


def _quick_ss(**kw):
    return SingleStreamSettings(**{"min_duration_ms": 100, "warmup_duration_ms": 10, "min_query_count": 200, **kw})


def test_single_stream_is_valid_and_records_every_query(null_sut):
    sut, qsl = null_sut
    chunks = []
    result = SingleStream(_quick_ss()).run(sut, qsl, sink=chunks.append)
    rec = result.records
    n = len(rec["completed_ns"])
    assert result.valid and result.reasons == []
    assert n >= 200 and result.summary["query_count"] == n
    # the sink received every record exactly once, in order
    assert np.array_equal(np.concatenate([c["query_index"] for c in chunks]), np.arange(n))
    # next query scheduled when the previous completes (or later, after a bookkeeping pause)
    assert np.all(rec["scheduled_ns"][1:] >= rec["completed_ns"][:-1])
    assert np.all(rec["scheduled_ns"] <= rec["issued_ns"]) and np.all(rec["issued_ns"] <= rec["completed_ns"])
    assert result.headline_metric == "latency_p90_ms"
    assert result.headline_value == result.summary["early_stopping_estimate_ms"] > 0


def test_single_stream_samples_come_from_the_loaded_set_in_seeded_order(null_sut):
    sut, qsl = null_sut
    s = _quick_ss(max_query_count=300, min_duration_ms=1)
    a = SingleStream(s).run(sut, qsl).records["sample_index"]
    b = SingleStream(s).run(sut, qsl).records["sample_index"]
    c = SingleStream(s.model_copy(update={"sample_index_rng_seed": 7})).run(sut, qsl).records["sample_index"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(np.unique(a)) <= qsl.performance_sample_count


def test_single_stream_too_short_is_invalid_with_the_arithmetic(null_sut):
    sut, qsl = null_sut
    s = SingleStreamSettings(min_duration_ms=60_000, max_duration_ms=60_000, warmup_duration_ms=0,
                             min_query_count=1024, max_query_count=50)
    result = SingleStream(s).run(sut, qsl)
    assert not result.valid and result.validity == "INVALID"
    text = " | ".join(result.reasons)
    assert "min query count not met: 50 queries < min_query_count 1024" in text
    assert "early stopping needs at least 64 queries" in text
    assert "min duration not met" in text
    assert result.headline_value is None


class SpinBackend(NullBackend):
    """A null backend that busy-waits 0.2 ms per batch: a system of known latency."""

    def run_batch(self, inputs):
        end = time.perf_counter_ns() + 200_000
        while time.perf_counter_ns() < end:
            pass
        return super().run_batch(inputs)


def test_single_stream_measures_a_slow_system(null_sut, tiny_model_card):
    _, qsl = null_sut
    backend = SpinBackend()
    backend.prepare(tiny_model_card, None)
    sut = BackendSUT(backend, qsl)
    result = SingleStream(_quick_ss(max_query_count=100, min_duration_ms=1)).run(sut, qsl)
    assert 0.2 <= result.summary["latency_p50_ms"] < 5


def test_offline_issues_one_query_batched_by_the_system(null_sut):
    sut, qsl = null_sut
    chunks = []
    s = OfflineSettings(min_duration_ms=50, warmup_duration_ms=10, min_sample_count=1000)
    result = Offline(s).run(sut, qsl, sink=chunks.append)
    rec = result.records
    n = len(rec["completed_ns"])
    assert result.valid, result.reasons
    assert n >= 1000 and set(rec["query_index"]) == {0}
    assert result.summary["batches"] == -(-n // 16)  # ceil(n / batch size)
    assert sum(len(c["completed_ns"]) for c in chunks) == n
    assert result.headline_metric == "samples_per_second"
    assert result.headline_value == pytest.approx(n * 1e9 / result.summary["duration_ns"])


def test_offline_with_low_expected_qps_is_invalid_and_says_what_to_set(null_sut):
    sut, qsl = null_sut
    s = OfflineSettings(min_duration_ms=5_000, warmup_duration_ms=0, min_sample_count=100, expected_qps=10)
    result = Offline(s).run(sut, qsl)
    assert not result.valid
    assert "min duration not met" in result.reasons[0] and "set expected_qps >=" in result.reasons[0]


def test_settings_reject_impossible_values():
    from pydantic import ValidationError
    with pytest.raises(ValidationError):
        SingleStreamSettings(min_duration_ms=-1)
    with pytest.raises(ValidationError):
        SingleStreamSettings(min_duration_ms=10_000, max_duration_ms=1_000)
    with pytest.raises(ValidationError):
        OfflineSettings(nonsense=1)
