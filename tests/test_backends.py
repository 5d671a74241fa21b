"""Backends: onnxruntime settings and cards on the real digits model; the null backend; streaming errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from runner import registry
from runner.backends.null import NullBackend
from runner.backends.onnxruntime import OnnxRuntimeBackend, OnnxRuntimeSettings
from runner.errors import BackendError, SettingsError


@pytest.fixture(scope="module")
def digits():
    task = registry.get("task", "digits")()
    return task, task.sample_library()


def _prepared(digits, variant="fp32", **settings):
    task, _ = digits
    model, path = task.model_card(variant)
    backend = OnnxRuntimeBackend(OnnxRuntimeSettings(**settings))
    backend.prepare(model, path)
    return backend


@pytest.mark.parametrize("level", ["disable", "basic", "extended", "all"])
def test_optimisation_levels_give_the_same_predictions(digits_models, digits, level):
    _, qsl = digits
    inputs = qsl.get(np.arange(64))
    reference = _prepared(digits).run_batch(inputs)[0]
    out = _prepared(digits, graph_optimization_level=level, intra_op_threads=1).run_batch(inputs)[0]
    assert np.array_equal(out.argmax(1), reference.argmax(1))
    np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)


def test_card_records_runtime_version_providers_and_resolved_threads(digits_models, digits):
    card = _prepared(digits, "int8", providers=["cpu"], batch_size=8).card()
    assert card.backend == "onnxruntime" and card.runtime_version == ort.__version__
    assert card.execution_providers == ["CPUExecutionProvider"] and card.device == "cpu"
    assert card.settings["intra_op_threads"] >= 1 and card.settings["batch_size"] == 8
    assert card.plugin_version != "not installed"


def test_unknown_provider_lists_the_available_ones(digits_models, digits):
    with pytest.raises(SettingsError, match="available: .*CPUExecutionProvider"):
        _prepared(digits, providers=["tpu"])


def test_impossible_settings_are_rejected():
    from pydantic import ValidationError
    for bad in ({"intra_op_threads": 0}, {"batch_size": 0}, {"graph_optimization_level": "max"}, {"threads": 2}):
        with pytest.raises(ValidationError):
            OnnxRuntimeSettings(**bad)


def test_streaming_a_model_without_a_generation_spec_says_so(digits_models, digits):
    """digits' model card has no generation spec: onnxruntime refuses to stream it, by name."""
    with pytest.raises(BackendError, match="generation spec"):
        next(iter(_prepared(digits).run_stream({"tokens": np.zeros((1, 4), np.int64),
                                                 "max_new_tokens": np.array([2])})))


def test_the_null_backend_streams_zeros_at_once():
    tokens = list(NullBackend().run_stream({"tokens": np.zeros((1, 4), np.int64), "max_new_tokens": np.array([3])}))
    assert len(tokens) == 3 and all(t[0].tolist() == [0] for t in tokens)


def test_null_backend_answers_with_zeros_of_the_model_shape(digits_models, digits):
    task, qsl = digits
    model, _ = task.model_card("fp32")
    backend = registry.get("backend", "null")()
    backend.prepare(model, None)
    out = backend.run_batch(qsl.get(np.arange(5)))
    assert len(out) == 1 and out[0].shape == (5, 10) and not out[0].any()
    assert backend.card().runtime == "none"
