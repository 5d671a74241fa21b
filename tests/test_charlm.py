"""The `charlm` task: numpy GRU gradients, ONNX == numpy, reproducible build, streaming, runs end to end."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from pydantic import ValidationError

from _builds import VARIANTS, assert_only_models_and_cards, assert_same_bytes, build_twice, model_files
from runner import registry
from runner.backends.onnxruntime import OnnxRuntimeBackend
from runner.cards import ModelCard, card_hash
from runner.errors import BackendError, ModelFileError
from runner.run import RunRequest, execute_run, prepare_run
from runner.task import AccuracyResult
from tasks.charlm._corpus import UNKNOWN, VOCAB, VOCAB_SIZE, bits_per_char, decode, encode, load_split, windows
from tasks.charlm._numpy_gru import forward, init_params, loss_and_grads
from tasks.charlm.build_model import build, run_onnx, to_onnx

STEPS = 30


# ------------------------------------------------------------------------------------------- helpers

def _params_of(path: Path) -> dict[str, np.ndarray]:
    """The numpy parameters read back from an fp32 ONNX file's initializers (independent of the build's memory)."""
    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    hid = init["gru.R"].shape[-1]
    bias = init["gru.B"][0]
    return {"emb": init["emb"], "W": init["gru.W"][0], "R": init["gru.R"][0], "Wb": bias[:3 * hid],
            "Rb": bias[3 * hid:], "Wo": init["out.W"], "bo": init["out.b"]}


def _numpy_greedy(p: dict[str, np.ndarray], context: np.ndarray, count: int) -> list[int]:
    """Greedy decoding step by step in numpy: prefill the context, then feed each token with the carried state."""
    logits, h, _ = forward(p, context, np.zeros((1, p["R"].shape[1]), np.float32))
    tokens = []
    for _ in range(count):
        tokens.append(int(logits[0, -1].argmax()))
        logits, h, _ = forward(p, np.array([[tokens[-1]]]), h)
    return tokens


def _backend(models: Path, variant: str = "fp32", cls=OnnxRuntimeBackend):
    card = ModelCard.model_validate(json.loads((models / f"charlm-{variant}.onnx.card.json").read_text()))
    backend = cls()
    backend.prepare(card, models / card.file)
    return backend


def _stream(backend, context: np.ndarray, count: int) -> list[list[np.ndarray]]:
    return list(backend.run_stream({"tokens": context, "max_new_tokens": np.array([count], np.int64)}))


# -------------------------------------------------------------------------------------- model maths

def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(7)
    p = {k: v.astype(np.float64) for k, v in init_params(rng, 11, embed=5, hidden=6).items()}
    for name in ("Wb", "Rb", "bo"):  # non-zero biases so their gradients are exercised
        p[name] = rng.standard_normal(p[name].shape) * 0.3
    tokens, targets = rng.integers(0, 11, (3, 7)), rng.integers(0, 11, (3, 7))
    h0 = rng.standard_normal((3, 6)) * 0.5
    _, grads, _ = loss_and_grads(p, tokens, targets, h0)
    eps = 1e-6
    for name, value in p.items():
        numeric = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            old = value[index]
            value[index] = old + eps
            up = loss_and_grads(p, tokens, targets, h0)[0]
            value[index] = old - eps
            down = loss_and_grads(p, tokens, targets, h0)[0]
            value[index] = old
            numeric[index] = (up - down) / (2 * eps)
        assert np.allclose(grads[name], numeric, rtol=1e-5, atol=1e-8), name


def test_onnx_graph_computes_the_numpy_forward_pass(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    p = init_params(rng, VOCAB_SIZE)
    for name in ("Wb", "Rb", "bo"):
        p[name] = (rng.standard_normal(p[name].shape) * 0.3).astype(np.float32)
    path = tmp_path / "gru.onnx"
    onnx.save(to_onnx(p), path)
    state = (rng.standard_normal((4, 128)) * 0.5).astype(np.float32)
    for length in (1, 9, 64):  # one decode step, and prefills
        tokens = rng.integers(0, VOCAB_SIZE, (4, length))
        logits, h, _ = forward(p, tokens, state)
        got_logits, got_h = run_onnx(path, tokens, state)
        assert got_logits.shape == (4, length, VOCAB_SIZE) and got_h.shape == (4, 128)
        np.testing.assert_allclose(got_logits, logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got_h, h, rtol=1e-4, atol=1e-5)


def test_built_model_equals_numpy_with_its_own_weights(charlm_models: Path) -> None:
    path = charlm_models / "charlm-fp32.onnx"
    tokens = windows(load_split()[1], 16, 64)
    logits, h, _ = forward(_params_of(path), tokens, np.zeros((16, 128), np.float32))
    got_logits, got_h = run_onnx(path, tokens)
    np.testing.assert_allclose(got_logits, logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_h, h, rtol=1e-4, atol=1e-5)


def test_bits_per_char_against_hand_computed_values() -> None:
    tokens = np.array([[0, 1, 2]])
    uniform = np.zeros((1, 3, 4))
    assert bits_per_char(uniform, tokens)[0] == pytest.approx(2.0)  # log2(4) for a uniform guess
    certain = np.full((1, 3, 4), -1e9)
    certain[0, 0, 1] = certain[0, 1, 2] = 0.0  # all probability on the right next character
    assert bits_per_char(certain, tokens)[0] == pytest.approx(0.0, abs=1e-9)
    half = np.log(np.array([[[1, 1, 0.0, 0], [0, 0, 1, 3], [1, 1, 1, 1]]]) + 1e-300)
    assert bits_per_char(half, tokens)[0] == pytest.approx((1.0 + 2.0) / 2)  # p=1/2 then p=1/4


# --------------------------------------------------------------------------------------- text data

def test_vocabulary_split_and_windows() -> None:
    assert VOCAB_SIZE == 97 and UNKNOWN == 96 and VOCAB[0] == "\n" and VOCAB[1:] == "".join(map(chr, range(32, 127)))
    assert decode(encode("def f(x):\n\treturn x \u2019")) == "def f(x):\n\ufffdreturn x \ufffd"
    train, test = load_split()
    assert train.dtype == test.dtype == np.int64 and 0 <= min(train.min(), test.min())
    assert max(train.max(), test.max()) <= UNKNOWN
    assert len(test) > 32_768 and len(train) > 8 * len(test) // 2
    for again, before in zip(load_split(), (train, test)):
        assert np.array_equal(again, before)
    assert not np.array_equal(load_split(seed=1)[1][:1000], test[:1000])
    w = windows(np.arange(1000), 10, 64)
    assert w.shape == (10, 64) and w[0, 0] == 0 and w[-1, -1] == 999
    assert np.all(np.diff(w[:, 0]) >= 64)  # non-overlapping
    with pytest.raises(ValueError, match="need 704 characters"):
        windows(np.arange(700), 11, 64)


# ------------------------------------------------------------------------------------------- build

@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two short builds with the same seed: one through build(), one through the command line."""
    return build_twice(tmp_path_factory, "charlm", build, "tasks.charlm.build_model", "steps", STEPS)


def _files(variant: str) -> tuple[str, str]:
    return model_files("charlm", variant)


def test_build_is_byte_for_byte_reproducible(builds: tuple[Path, Path]) -> None:
    assert_only_models_and_cards(builds[0], "charlm")
    assert_same_bytes(*builds, "charlm")


@pytest.mark.parametrize("variant", VARIANTS)
def test_models_use_standard_operators_and_cards_describe_them(builds: tuple[Path, Path], variant: str) -> None:
    model_name, card_name = _files(variant)
    path = builds[0] / model_name
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(path)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    ops = {node.op_type for node in model.graph.node}
    assert {"GRU", "Gather"} <= ops and ({"MatMulInteger", "DynamicQuantizeLinear"} <= ops) == (variant == "int8")
    assert [i.name for i in model.graph.input] == ["tokens", "state"]
    assert [o.name for o in model.graph.output] == ["logits", "state_out"]
    card = ModelCard.model_validate(json.loads((builds[0] / card_name).read_text()))
    data = path.read_bytes()
    assert card.sha256 == hashlib.sha256(data).hexdigest() and card.size_bytes == len(data)
    assert card.operators == sorted(ops) and card.precision == variant and card.build.parameters["steps"] == STEPS
    assert card.generation.model_dump() == {"token_input": "tokens", "logits_output": "logits",
                                            "state": [{"input": "state", "output": "state_out"}], "vocab_size": 97}
    tokens = windows(load_split()[1], 512, 64)
    assert card.reference_quality.metric == "bits_per_char" and card.reference_quality.samples == 512
    assert card.reference_quality.value == pytest.approx(float(bits_per_char(run_onnx(path, tokens)[0], tokens).mean()),
                                                         abs=1e-12)


def test_trained_model_beats_a_unigram_model_and_int8_keeps_quality(charlm_models: Path) -> None:
    train, test = load_split()
    counts = np.bincount(train, minlength=VOCAB_SIZE) + 1.0
    tokens = windows(test, 512, 64)
    unigram = np.broadcast_to(np.log(counts / counts.sum()), (*tokens.shape, VOCAB_SIZE))
    unigram_bpc = float(bits_per_char(unigram, tokens).mean())
    cards = {v: json.loads((charlm_models / _files(v)[1]).read_text())["reference_quality"] for v in VARIANTS}
    assert cards["fp32"]["value"] < 0.5 * unigram_bpc  # about 1.8 against 4.6 bits per character
    assert cards["int8"]["value"] <= 1.02 * cards["fp32"]["value"] and cards["int8"]["fp32_reference"] == cards["fp32"]["value"]


# ------------------------------------------------------------------------------------------ cards

def test_generation_field_keeps_existing_card_hashes_and_checks_names(charlm_models: Path) -> None:
    data = json.loads((charlm_models / "charlm-fp32.onnx.card.json").read_text())
    without = {k: v for k, v in data.items() if k != "generation"}
    card = ModelCard.model_validate(without)
    assert card.generation is None and card.to_dict() == without and card.card_hash() == card_hash(without)
    assert ModelCard.model_validate(data).card_hash() == card_hash(data)
    bad = json.loads(json.dumps(data))
    bad["generation"]["state"][0]["input"] = "hidden"
    with pytest.raises(ValidationError, match="'hidden' is not in the model's inputs"):
        ModelCard.model_validate(bad)


def test_evaluate_refuses_a_model_built_on_other_text(charlm_models: Path) -> None:
    task = registry.get("task", "charlm")()
    card, _ = task.model_card("fp32")
    parameters = {**card.build.parameters, "heldout_sha256": "0" * 64}
    other = card.model_copy(update={"build": card.build.model_copy(update={"parameters": parameters})})
    logits = np.zeros((2, 64, VOCAB_SIZE), np.float32)
    assert task.evaluate(np.arange(2), [logits], card).value == pytest.approx(np.log2(VOCAB_SIZE))
    with pytest.raises(ModelFileError, match="built on other held-out text"):
        task.evaluate(np.arange(2), [logits], other)


def test_lower_is_better_accuracy_passes_below_its_target() -> None:
    index = np.arange(2)
    assert AccuracyResult("bits_per_char", 1.8, 1.85, index, [], [], higher_is_better=False).passed
    assert not AccuracyResult("bits_per_char", 1.9, 1.85, index, [], [], higher_is_better=False).passed
    assert AccuracyResult("top1_accuracy", 0.9, 0.85, index, [], []).passed


# -------------------------------------------------------------------------------------- streaming

def test_run_stream_equals_numpy_greedy_decoding_one_step_per_token(charlm_models: Path) -> None:
    backend = _backend(charlm_models)
    params = _params_of(charlm_models / "charlm-fp32.onnx")
    context = encode("The assert statement is a convenient way to insert ")[None]
    calls = []
    run = backend._run
    backend._run = lambda names, feeds: calls.append(feeds["tokens"].shape) or run(names, feeds)
    stream = backend.run_stream({"tokens": context, "max_new_tokens": np.array([40], np.int64)})
    assert calls == []  # nothing runs before the first next()
    first = next(stream)
    assert calls == [context.shape]  # the prefill, once
    items = [first, *stream]
    assert len(items) == 40 and all(len(i) == 1 and i[0].dtype == np.int64 and i[0].shape == (1,) for i in items)
    assert calls[1:] == [(1, 1)] * 39  # then one single-token step per further token
    assert [int(i[0][0]) for i in items] == _numpy_greedy(params, context, 40)
    assert [len(_stream(backend, context, n)) for n in (0, 1, 3)] == [0, 1, 3]


def test_openvino_streams_the_same_tokens(charlm_models: Path) -> None:
    from runner.backends.openvino import OpenVinoBackend

    context = windows(load_split()[1], 4, 64)[2:3]
    reference = _stream(_backend(charlm_models), context, 25)
    got = _stream(_backend(charlm_models, cls=OpenVinoBackend), context, 25)
    assert [int(t[0][0]) for t in got] == [int(t[0][0]) for t in reference]


def test_streaming_a_model_without_generation_spec_is_a_backend_error(charlm_models: Path, digits_models: Path) -> None:
    task = registry.get("task", "digits")()
    card, path = task.model_card("fp32")
    backend = OnnxRuntimeBackend()
    backend.prepare(card, path)
    with pytest.raises(BackendError, match="no generation spec"):
        backend.run_stream({"tokens": np.zeros((1, 4), np.int64), "max_new_tokens": np.array([2])})
    charlm = _backend(charlm_models)
    for bad, message in (({"tokens": np.zeros((2, 4), np.int64), "max_new_tokens": np.array([2])}, r"\[1, L >= 1\]"),
                         ({"tokens": np.zeros((1, 4), np.int64), "max_new_tokens": np.array([-1])}, ">= 0"),
                         ({"tokens": np.zeros((1, 4), np.int64)}, "missing max_new_tokens")):
        with pytest.raises(BackendError, match=message):
            charlm.run_stream(bad)


# ------------------------------------------------------------------------------------- end to end

def test_offline_quick_run_completes_with_bits_per_char_meeting_target(charlm_models: Path, store) -> None:
    prep = prepare_run(RunRequest(task="charlm", backend="onnxruntime", scenario="offline", quick=True,
                                  scenario_settings={"warmup_batch_samples": 256, "min_sample_count": 512}))
    run = store.get_run(execute_run(prep, store))
    reference = prep.model.reference_quality
    assert run.status == "complete" and run.accuracy_metric == "bits_per_char" and run.accuracy_passed
    assert run.accuracy_value == pytest.approx(reference.value, rel=1e-6)
    assert run.accuracy_target == pytest.approx(1.02 * reference.fp32_reference)
    records = store.read_accuracy_samples(run.id)
    assert len(records) == 512 and all(len(r["reference"]) == 64 for r in records)
    assert np.mean([r["prediction"] for r in records]) == pytest.approx(run.accuracy_value)


def test_null_backend_scores_a_uniform_guess_and_fails(charlm_models: Path, store) -> None:
    prep = prepare_run(RunRequest(task="charlm", backend="null", scenario="offline", quick=True))
    run = store.get_run(execute_run(prep, store))
    assert run.status == "complete" and run.accuracy_passed is False
    assert run.accuracy_value == pytest.approx(np.log2(VOCAB_SIZE))  # zero logits: uniform over 97 ids


def test_interactive_quick_run_streams_on_onnxruntime(charlm_models: Path, store) -> None:
    prep = prepare_run(RunRequest(task="charlm", backend="onnxruntime", scenario="interactive", quick=True,
                                  scenario_settings={"min_query_count": 64, "warmup_duration_ms": 50}))
    run = store.get_run(execute_run(prep, store))
    summary = run.summary
    assert run.status == "complete" and run.headline_metric == "tokens_per_second" and run.accuracy_passed
    assert summary["query_count"] >= 64 and summary["output_tokens"] >= 16 * summary["query_count"]
    assert summary["context_tokens_max"] > 64  # later turns carry the earlier context and answers
