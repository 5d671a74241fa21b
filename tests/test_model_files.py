"""Missing, corrupt and mis-described model files, and cards that do not say what the task computes: one
clear message, exit 2, nothing written to the store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from infersight.cli import main
from runner import registry
from runner.store import Store
from runner.task import file_sha256
from tasks.digits import DigitsTask


@pytest.fixture
def digits_copy(tmp_path, digits_models):
    """The digits task with its card and built models copied to tmp_path, registered as `digits`."""
    src = Path(DigitsTask.card_file)
    shutil.copy(src, tmp_path / "task.yaml")
    shutil.copytree(digits_models, tmp_path / "models")

    class DigitsCopy(DigitsTask):
        card_file = tmp_path / "task.yaml"

    registry.register("task", "digits", DigitsCopy)
    yield tmp_path / "models"
    registry.unregister("task", "digits")


def _run_cli(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, " ".join(capsys.readouterr().err.split())


def _assert_nothing_written(db: Path) -> None:
    store = Store(str(db))
    try:
        assert store.list_runs() == []
    finally:
        store.close()


def test_missing_model_file(digits_copy, tmp_path, capsys):
    (digits_copy / "digits-fp32.onnx").unlink()
    db = tmp_path / "s.db"
    code, text = _run_cli(["run", "digits", "--quick", "--db", str(db)], capsys)
    assert code == 2 and "digits-fp32.onnx: model file missing" in text and "infersight build digits" in text
    _assert_nothing_written(db)


def test_corrupt_model_file_fails_its_sha256(digits_copy, tmp_path, capsys):
    path = digits_copy / "digits-int8.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    db = tmp_path / "s.db"
    code, text = _run_cli(["run", "digits", "--model-variant", "int8", "--quick", "--db", str(db)], capsys)
    assert code == 2 and "model file is corrupt or was changed" in text
    _assert_nothing_written(db)


def test_unreadable_model_with_matching_card(digits_copy, tmp_path, capsys):
    card_file = tmp_path / "task.yaml"  # a task that pins no file (a pinned one refuses other bytes before loading)
    card_file.write_text(card_file.read_text().split("\n# The reference model files")[0] + "\n")
    path = digits_copy / "digits-fp32.onnx"
    path.write_bytes(b"this is not an onnx file")
    card_path = digits_copy / "digits-fp32.onnx.card.json"
    card = json.loads(card_path.read_text())
    card["sha256"], card["size_bytes"] = file_sha256(path), path.stat().st_size
    card_path.write_text(json.dumps(card))
    db = tmp_path / "s.db"
    code, text = _run_cli(["run", "digits", "--quick", "--db", str(db)], capsys)
    assert code == 2 and f"{path}: not an ONNX model (onnx cannot parse it" in text
    _assert_nothing_written(db)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", "img", "inputs.0.name: the model card says 'img', the model file digits-fp32.onnx has inputs 'image'"),
    ("dtype", "float64", "inputs.0.dtype: the model card says float64, the model file digits-fp32.onnx has float32"),
    ("shape", ["batch", 1, 8, 9],
     "inputs.0.shape: the model card says ['batch', 1, 8, 9], the model file digits-fp32.onnx has ['batch', 1, 8, 8]"),
])
def test_a_model_card_that_does_not_describe_its_file_says_which_field(digits_copy, tmp_path, capsys, field, value,
                                                                       message):
    card_path = digits_copy / "digits-fp32.onnx.card.json"
    card = json.loads(card_path.read_text())
    card["inputs"][0][field] = value
    card_path.write_text(json.dumps(card, indent=1))
    line = next(n for n, text in enumerate(card_path.read_text().splitlines(), 1) if f'"{field}"' in text)
    db = tmp_path / "s.db"
    code, text = _run_cli(["run", "digits", "--quick", "--db", str(db)], capsys)
    assert code == 2 and f"{card_path}:{line}: {message}" in text
    _assert_nothing_written(db)


def test_a_model_output_the_card_leaves_out_is_named(digits_copy, tmp_path, capsys):
    card_path = digits_copy / "digits-fp32.onnx.card.json"
    card = json.loads(card_path.read_text())
    card["outputs"][0]["name"] = "scores"
    card_path.write_text(json.dumps(card))
    code, text = _run_cli(["run", "digits", "--quick", "--db", str(tmp_path / "s.db")], capsys)
    assert code == 2 and "outputs.0.name: the model card says 'scores', the model file digits-fp32.onnx has " \
                         "outputs 'logits'" in text
    assert "outputs: the model card says nothing of 'logits', the model file digits-fp32.onnx has logits " \
           "float32" in text


def test_malformed_model_card(digits_copy, tmp_path, capsys):
    (digits_copy / "digits-fp32.onnx.card.json").write_text('{"task": "digits",')
    code, text = _run_cli(["run", "digits", "--quick", "--db", str(tmp_path / "s.db")], capsys)
    assert code == 2 and "digits-fp32.onnx.card.json:1: malformed JSON" in text


def test_models_not_built(digits_copy, tmp_path, capsys):
    shutil.rmtree(digits_copy)
    code, text = _run_cli(["run", "digits", "--quick", "--db", str(tmp_path / "s.db")], capsys)
    assert code == 2 and "are not built; run `infersight build digits`" in text


def test_a_free_text_quality_metric_in_a_task_card_is_refused_naming_the_known_ones(digits_copy, tmp_path,
                                                                                     capsys):
    card_file = tmp_path / "task.yaml"
    card_file.write_text(card_file.read_text().replace("metric: top1_accuracy", "metric: pretty good accuracy"))
    line = next(n for n, text in enumerate(card_file.read_text().splitlines(), 1) if "pretty good" in text)
    db = tmp_path / "s.db"
    code, text = _run_cli(["run", "digits", "--quick", "--db", str(db)], capsys)
    assert code == 2 and (f"{card_file}:{line}: metrics.quality.metric: unknown metric 'pretty good accuracy' for "
                          f"task 'digits'; known metrics: top1_accuracy") in text
    assert not db.exists() or Store(str(db)).list_runs() == []


def test_a_model_card_whose_reference_quality_is_in_another_metric_is_refused(digits_copy, tmp_path, capsys):
    card_path = digits_copy / "digits-fp32.onnx.card.json"
    card = json.loads(card_path.read_text())
    card["reference_quality"]["metric"] = "f1"
    card_path.write_text(json.dumps(card, indent=1))
    db = tmp_path / "s.db"
    code, text = _run_cli(["run", "digits", "--quick", "--db", str(db)], capsys)
    assert code == 2 and ("reference_quality.metric: the model card says 'f1', the task's quality metric is "
                          "'top1_accuracy'") in text and str(card_path) in text
    _assert_nothing_written(db)
