"""The digits build: reproducible bytes, standard ONNX operators, valid cards, one stratified split."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from _builds import VARIANTS, assert_only_models_and_cards, assert_same_bytes, build_twice, model_files
from runner.cards.model import ModelCard
from tasks.digits.build_model import accuracy, build, load_split

EPOCHS = 2


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two builds with the same seed: one through build(), one through the command line."""
    return build_twice(tmp_path_factory, "build", build, "tasks.digits.build_model", "epochs", EPOCHS)


def _files(variant: str) -> tuple[str, str]:
    return model_files("digits", variant)


def test_build_is_byte_for_byte_reproducible(builds: tuple[Path, Path]) -> None:
    assert_same_bytes(*builds, "digits")


def test_build_leaves_only_models_and_cards(builds: tuple[Path, Path]) -> None:
    for folder in builds:
        assert_only_models_and_cards(folder, "digits")


@pytest.mark.parametrize("variant", VARIANTS)
def test_models_use_only_standard_onnx_operators(builds: tuple[Path, Path], variant: str) -> None:
    path = builds[0] / _files(variant)[0]
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(path)
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert model.ir_version <= 9
    assert model.producer_name == "infersight-digits-build"
    ops = {node.op_type for node in model.graph.node}
    assert {"Conv", "MaxPool", "Gemm"} <= ops
    if variant == "int8":
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["logits"]


def test_cards_validate_and_describe_their_files(builds: tuple[Path, Path]) -> None:
    folder = builds[0]
    _, _, x_test, y_test = load_split()
    cards = {}
    for variant in VARIANTS:
        model_name, card_name = _files(variant)
        card = ModelCard.model_validate(json.loads((folder / card_name).read_text()))
        data = (folder / model_name).read_bytes()
        assert card.file == model_name and card.variant == variant and card.precision == variant
        assert card.task == "digits" and card.task_version == "1.0.0" and card.name == "digits-cnn"
        assert card.sha256 == hashlib.sha256(data).hexdigest()
        assert card.size_bytes == len(data)
        assert card.operators == sorted({n.op_type for n in onnx.load_from_string(data).graph.node})
        assert card.opset == 17
        assert card.build.script == "tasks/digits/build_model.py"
        assert card.build.parameters["epochs"] == EPOCHS
        assert set(card.build.tool_versions) == {"numpy", "onnx", "onnxruntime", "scikit-learn"}
        assert card.inputs[0].shape == ["batch", 1, 8, 8] and card.outputs[0].shape == ["batch", 10]
        quality = card.reference_quality
        assert quality.metric == "top1_accuracy" and quality.samples == len(y_test) == 360
        assert quality.value == accuracy(folder / model_name, x_test, y_test)
        cards[variant] = card
    assert cards["int8"].reference_quality.fp32_reference == cards["fp32"].reference_quality.value
    assert cards["fp32"].reference_quality.fp32_reference == cards["fp32"].reference_quality.value


def test_split_is_stratified_complete_and_stable() -> None:
    x_train, y_train, x_test, y_test = load_split()
    assert len(x_train) + len(x_test) == 1797 and len(x_test) == 360
    assert x_train.shape[1:] == x_test.shape[1:] == (1, 8, 8)
    assert x_train.dtype == x_test.dtype == np.float32 and y_train.dtype == y_test.dtype == np.int64
    assert 0.0 <= min(x_train.min(), x_test.min()) and max(x_train.max(), x_test.max()) <= 1.0
    overall = np.bincount(np.concatenate([y_train, y_test]), minlength=10)
    in_test = np.bincount(y_test, minlength=10)
    assert np.all(np.abs(in_test - overall * 0.2) <= 1.0)  # every class in its share, to one image
    for again, before in zip(load_split(), (x_train, y_train, x_test, y_test)):
        assert np.array_equal(again, before)
    assert not np.array_equal(load_split(seed=1)[3], y_test)
