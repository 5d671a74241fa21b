"""The OpenVINO backend on the real digits models: same answers as onnxruntime, its card, bad settings."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest

from runner import registry
from runner.backends.onnxruntime import OnnxRuntimeBackend
from runner.backends.openvino import OpenVinoBackend, OpenVinoSettings
from runner.errors import BackendError, ModelFileError, SettingsError
from runner.run import RunRequest, execute_run, prepare_run

SHORT = {"min_duration_ms": 200, "warmup_duration_ms": 0, "min_sample_count": 512}


@pytest.fixture(scope="module")
def digits(digits_models):
    task = registry.get("task", "digits")()
    return task, task.sample_library().inputs["image"]


def predict(backend, card, path, x: np.ndarray, batch: int = 32) -> np.ndarray:
    backend.prepare(card, path)
    try:
        return np.concatenate([backend.run_batch({"image": x[i:i + batch]})[0] for i in range(0, len(x), batch)])
    finally:
        backend.teardown()


@pytest.mark.parametrize("variant", ["fp32", "int8"])
@pytest.mark.parametrize("settings", [{}, {"performance_hint": "throughput", "num_streams": 2}])
def test_openvino_gives_onnxruntimes_top1_predictions_on_the_test_split(digits, variant, settings):
    task, x = digits
    card, path = task.model_card(variant)
    reference = predict(OnnxRuntimeBackend(), card, path, x)
    ours = predict(OpenVinoBackend(OpenVinoSettings(**settings)), card, path, x)
    assert ours.shape == reference.shape == (len(x), 10)
    assert np.array_equal(ours.argmax(1), reference.argmax(1))  # every one of the 360 test samples
    assert np.allclose(ours, reference, atol=1e-4 if variant == "fp32" else 0.5)


def test_a_measured_openvino_run_logs_the_same_answers_and_its_resolved_properties(digits, store):
    task, x = digits
    req = RunRequest("digits", "openvino", "offline", "int8", {"performance_hint": "throughput"}, SHORT, quick=True)
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.status == "complete" and run.accuracy_passed
    card, path = task.model_card("int8")
    reference = predict(OnnxRuntimeBackend(), card, path, x).argmax(1).tolist()
    assert [a["prediction"] for a in store.read_accuracy_samples(run.id)] == reference
    backend = store.get_card("backend", run.backend_hash)
    assert (backend["backend"], backend["runtime"], backend["device"]) == ("openvino", "openvino", "cpu")
    assert backend["runtime_version"] == ov.get_version()
    s = backend["settings"]
    assert s["performance_hint"] == "throughput" and s["inference_precision_hint"] == "f32"
    assert s["num_streams"] >= 1 and s["infer_requests"] >= 1 and s["inference_num_threads"] >= 1
    assert s["execution_devices"] == ["CPU"] and s["batch_size"] == 32


def test_the_precision_hint_is_read_back_from_the_compiled_model(digits):
    task, _ = digits
    backend = OpenVinoBackend(OpenVinoSettings(inference_precision_hint="auto", num_streams=1))
    backend.prepare(*task.model_card("fp32"))
    resolved = backend.effective_settings()
    assert resolved["inference_precision_hint"] in ("f32", "bf16", "f16")  # OpenVINO's choice for this CPU
    assert resolved["num_streams"] == 1 and resolved["infer_requests"] == 1


@pytest.mark.parametrize("settings, message", [
    ({"performance_hint": "fast"}, "performance_hint: Input should be 'latency', 'throughput' or 'none'"),
    ({"num_streams": 0}, "num_streams: Input should be greater than or equal to 1"),
    ({"inference_precision_hint": "f16"}, "inference_precision_hint: Input should be 'f32', 'bf16' or 'auto'"),
    ({"threads": 2}, "threads: unknown field"),
])
def test_bad_openvino_settings_are_refused_before_anything_runs(digits_models, settings, message):
    with pytest.raises(SettingsError) as info:
        prepare_run(RunRequest("digits", "openvino", "offline", backend_settings=settings))
    assert "backend openvino" in str(info.value) and message in str(info.value)


def test_a_device_openvino_does_not_have_is_a_clear_error(digits):
    task, _ = digits
    with pytest.raises(SettingsError) as info:
        OpenVinoBackend(OpenVinoSettings(device="NPU")).prepare(*task.model_card("fp32"))
    assert "device 'NPU' not available in OpenVINO" in str(info.value) and "available: CPU" in str(info.value)


@pytest.mark.parametrize("content", [b"\x08\x07this is not a protobuf model", b"garbage: not a model", None])
def test_a_model_openvino_cannot_read_names_the_file_and_the_reason_only(digits, tmp_path, capfd, content):
    task, _ = digits
    card, _ = task.model_card("fp32")
    bad = tmp_path / "digits-fp32.onnx"
    if content is not None:  # None: the file is missing
        bad.write_bytes(content)
    capfd.readouterr()
    with pytest.raises(ModelFileError) as info:
        OpenVinoBackend().prepare(card, bad)
    text = str(info.value)
    assert text.startswith(f"{bad}: OpenVINO cannot read the model: ") and "Exception from" not in text
    written = capfd.readouterr()
    assert (written.out, written.err) == ("", ""), "OpenVINO's frontends logged beside the one message"


def test_openvino_cannot_stream_and_says_so(digits):
    task, x = digits
    backend = OpenVinoBackend()
    backend.prepare(*task.model_card("fp32"))
    with pytest.raises(BackendError, match="backend 'openvino' cannot stream"):
        next(backend.run_stream({"image": x[:1]}))
