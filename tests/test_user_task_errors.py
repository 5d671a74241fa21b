"""Bad input to a user's own task: one clear message naming the place, exit 2, nothing stored or left behind."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from _user_models import (REGRESSOR_CARD, classification_data, linear_classifier, token_model,
                          two_input_regressor)
from conftest import REPO
from infersight.cli import main
from runner.store import Store
from runner.task import file_sha256


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    """One scaffolded task (linear classifier, .npz) that each test copies and breaks."""
    root = tmp_path_factory.mktemp("lin")
    model, w = linear_classifier(root / "lin.onnx")
    x, y = classification_data(w)
    np.savez(root / "data.npz", x=x, label=y)
    main(["task", "new", "lin", "--model", str(model), "--data", str(root / "data.npz"), "--out", str(root / "lin")])
    return root / "lin", x, y


@pytest.fixture
def task(scaffolded, tmp_path):
    folder, x, y = scaffolded
    shutil.copytree(folder, tmp_path / "lin")
    return tmp_path / "lin", x, y


def fails(capsys, tmp_path, *args: str) -> str:
    """Run the CLI, expect exit 2 with one message; return it. With `run`, the store must hold no run."""
    db = tmp_path / "runs.db"
    with pytest.raises(SystemExit) as info:
        main([*args, *(["--db", str(db)] if args[0] == "run" else [])])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("error: ") == 1 and "Traceback" not in err
    if db.exists():
        with Store(str(db)) as store:
            assert store.list_runs() == []
    return " ".join(err.split())  # the console wraps long lines


def run_card(capsys, tmp_path, folder) -> str:
    return fails(capsys, tmp_path, "run", str(folder / "task.yaml"), "--scenario", "offline", "--quick")


def line_of(card, text: str) -> int:
    return next(i for i, line in enumerate(card.read_text().splitlines(), 1) if text in line)


def edit(card, old: str, new: str) -> None:
    text = card.read_text()
    assert old in text
    card.write_text(text.replace(old, new))


def test_a_model_file_that_is_not_onnx(capsys, tmp_path):
    (tmp_path / "model.onnx").write_text("this is a text file, not a model\n")
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 4), np.float32), label=np.zeros(4, np.int64))
    msg = fails(capsys, tmp_path, "task", "new", "bad", "--model", str(tmp_path / "model.onnx"), "--data",
                str(tmp_path / "d.npz"), "--out", str(tmp_path / "bad"))
    assert f"{tmp_path / 'model.onnx'}: not an ONNX model" in msg
    assert not (tmp_path / "bad").exists() and list(tmp_path.glob(".bad*")) == []


def test_a_pinned_model_replaced_by_a_file_that_is_not_onnx(capsys, tmp_path, task):
    folder, *_ = task
    model = folder / "models" / "lin-fp32.onnx"
    pinned = file_sha256(model)
    model.write_bytes(b"\x00\x01garbage")
    edit(folder / "task.yaml", pinned, file_sha256(model))  # pinned, so the file itself is what is refused
    assert f"{model}: not an ONNX model" in run_card(capsys, tmp_path, folder)


def test_a_pinned_hash_the_file_does_not_match(capsys, tmp_path, task):
    folder, *_ = task
    linear_classifier(folder / "models" / "lin-fp32.onnx", seed=7)  # other weights, same signature
    card = folder / "task.yaml"
    msg = run_card(capsys, tmp_path, folder)
    assert f"{card}:{line_of(card, 'sha256: ')}: models.fp32.sha256: " in msg
    assert "the card pins" in msg and "not the pinned bytes" in msg


def test_a_data_file_whose_bytes_differ_from_its_pin(capsys, tmp_path, task):
    folder, x, y = task
    np.savez(folder / "data" / "data.npz", x=x[:10], label=y[:10])
    card = folder / "task.yaml"
    msg = run_card(capsys, tmp_path, folder)
    assert f"{card}:{line_of(card, 'sha256: ' + chr(34))}: declarative.data.sha256: data file" in msg


def test_an_unknown_metric_lists_the_known_ones(capsys, tmp_path, task):
    folder, *_ = task
    card = folder / "task.yaml"
    edit(card, "metric: accuracy\n", "metric: acuracy\n")
    msg = run_card(capsys, tmp_path, folder)
    assert f"{card}:{line_of(card, 'metric: acuracy')}: metrics.quality.metric: unknown metric 'acuracy'" in msg
    assert "known metrics: accuracy, balanced_accuracy, top_k_accuracy, f1, precision, recall, mse, mae, r2" in msg


def test_task_new_with_an_unknown_metric(capsys, tmp_path, scaffolded):
    folder, *_ = scaffolded
    msg = fails(capsys, tmp_path, "task", "new", "x", "--model", str(folder / "models" / "lin-fp32.onnx"),
                "--data", str(folder / "data" / "data.npz"), "--metric", "auc", "--out", str(tmp_path / "x"))
    assert "--metric auc: unknown metric; known metrics: accuracy," in msg and not (tmp_path / "x").exists()


@pytest.mark.parametrize("x_shape, dtype, message", [
    ((300, 5), np.float32, "model input 'x' takes samples of shape [4] (float32), but key 'x' of data.npz has "
                           "samples of shape [5]"),
    ((300, 4, 1), np.float32, "takes samples of shape [4] (float32), but key 'x' of data.npz has samples of "
                              "shape [4, 1]"),
    ((300, 4), "U3", "model input 'x' is float32, but key 'x' of data.npz holds str96 values"),
])
def test_data_whose_shape_or_dtype_the_model_input_cannot_take(capsys, tmp_path, task, x_shape, dtype, message):
    folder, _, y = task
    np.savez(folder / "data" / "data.npz", x=np.zeros(x_shape, dtype), label=y)
    card = folder / "task.yaml"
    edit(card, re.search(r'sha256: ("[0-9a-f]{64}")', card.read_text()).group(1), "null")
    msg = run_card(capsys, tmp_path, folder)
    assert f"{card}:" in msg and message in msg


def test_an_integer_input_fed_floats_says_which_dtypes(capsys, tmp_path):
    np.savez(tmp_path / "ids.npz", ids=np.ones((8, 3), np.float32), label=np.ones(8, np.float32))
    msg = fails(capsys, tmp_path, "task", "new", "tok", "--model", str(token_model(tmp_path / "tok.onnx")),
                "--data", str(tmp_path / "ids.npz"), "--out", str(tmp_path / "tok"))
    assert "declarative.data.inputs.ids: model input 'ids' is int64, but key 'ids' of ids.npz holds float32" in msg
    assert "tok/task.yaml:" in msg and ".new-" not in msg and not (tmp_path / "tok").exists()


def test_a_model_input_without_data_and_a_data_input_without_a_model_input(capsys, tmp_path, task):
    two = two_input_regressor(tmp_path / "two.onnx")
    np.savez(tmp_path / "ac.npz", a=np.zeros((5, 2), np.float32), c=np.zeros((5, 1), np.float32), y=np.zeros(5))
    msg = fails(capsys, tmp_path, "task", "new", "two", "--model", str(two), "--data", str(tmp_path / "ac.npz"),
                "--out", str(tmp_path / "two"))
    assert "model input 'b' has no data: ac.npz has keys a, c, y; name its source in declarative.data.inputs.b" in msg
    np.savez(tmp_path / "ab.npz", a=np.ones((5, 2), np.float32), b=np.ones(5, np.float32), y=np.full(5, 3.0))
    main(["task", "new", "two", "--model", str(two), "--data", str(tmp_path / "ab.npz"), "--out",
          str(tmp_path / "two")])
    card = yaml.safe_load((tmp_path / "two" / "task.yaml").read_text())  # each input by its own key; b [5] -> [5, 1]
    assert card["metrics"]["quality"]["metric"] == "mse"  # one value per sample: a regression, though y is whole
    folder, *_ = task
    card = folder / "task.yaml"
    edit(card, "    inputs: {}", "    inputs: {image: x}")
    msg = run_card(capsys, tmp_path, folder)
    where = f"{card}:{line_of(card, 'inputs: {image')}: declarative.data.inputs.image"
    assert f"{where}: the model has no input 'image'; its inputs: x" in msg


@pytest.mark.parametrize("change, message", [
    ("inputs: {a: [a0, a1], b: b}",
     "declarative.data.inputs.a: samples.csv has no column(s) 'a1'; it has columns a0, b, y"),
    ("references: {column: y}", None),
])
def test_csv_columns_missing_or_mismatched(capsys, tmp_path, change, message):
    (tmp_path / "models").mkdir()
    model = two_input_regressor(tmp_path / "models" / "reg-fp32.onnx")
    frame = pd.DataFrame({"a0": np.ones(6), "a1": np.ones(6), "b": np.ones(6), "y": np.ones(6)})
    card = tmp_path / "task.yaml"
    card.write_text(REGRESSOR_CARD.format(sha=file_sha256(model)))
    if message:  # a column the card names is missing
        frame.drop(columns="a1").to_csv(tmp_path / "samples.csv", index=False)
    else:  # references of another length
        frame.to_csv(tmp_path / "samples.csv", index=False)
        pd.DataFrame({"y": np.ones(4)}).to_csv(tmp_path / "refs.csv", index=False)
        edit(card, change, "references: {file: refs.csv, column: y}")
        message = "declarative.references: 4 references for 6 samples in samples.csv"
    msg = run_card(capsys, tmp_path, tmp_path)
    assert f"{card}:" in msg and message in msg


def test_a_csv_column_of_text_and_labels_that_are_missing(capsys, tmp_path, scaffolded):
    folder, x, y = scaffolded
    frame = pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "f2": ["a"] * len(x), "f3": x[:, 3], "label": y})
    frame.to_csv(tmp_path / "t.csv", index=False)
    args = ["task", "new", "t", "--model", str(folder / "models" / "lin-fp32.onnx"), "--data", str(tmp_path / "t.csv")]
    msg = fails(capsys, tmp_path, *args, "--labels", "species")
    assert "--labels species: not a file, and" in msg
    assert "has no column 'species'; it has columns f0, f1, f2, f3, label" in msg
    msg = fails(capsys, tmp_path, *args)
    assert "t.csv: column 'f2' holds object values such as 'a', not numbers" in msg


@pytest.mark.parametrize("old, new, line, field, message", [
    ("    key: \"label\"\n", "    key: \"label\"\n    column: y\n", "  references:", "declarative.references",
     "give exactly one of key, column, file (with an optional column) or subfolders"),
    ("  output: \"logits\"", "  outptu: \"logits\"", "outptu", "declarative.outptu", "unknown field"),
    ("    calibration_samples: 128", "    calibration_samples: 0", "calibration_samples: 0",
     "declarative.int8.calibration_samples", "greater than 0"),
    ("  output: \"logits\"", "  output: \"probs\"", "output: \"probs\"", "declarative.output",
     "the model has no output 'probs'; its outputs: logits"),
])
def test_a_malformed_declarative_section_names_file_line_and_field(capsys, tmp_path, task, old, new, line, field,
                                                                   message):
    folder, *_ = task
    card = folder / "task.yaml"
    edit(card, "  # int8:  # uncomment", "  int8:  # uncomment")
    edit(card, "  #   calibration_samples: 128", "    calibration_samples: 128")
    edit(card, old, new)
    msg = run_card(capsys, tmp_path, folder)
    assert f"{card}:{line_of(card, line)}: {field}: " in msg and message in msg


def test_an_unknown_metric_option_and_a_direction_that_does_not_fit_the_metric(capsys, tmp_path, task):
    folder, *_ = task
    card = folder / "task.yaml"
    edit(card, "metric_options: {}", "metric_options: {k: 2}")
    msg = run_card(capsys, tmp_path, folder)
    where = f"{card}:{line_of(card, 'metric_options: {k')}: declarative.metric_options"
    assert f"{where}: accuracy takes no option(s) k" in msg
    edit(card, "metric_options: {k: 2}", "metric_options: {}")
    edit(card, "higher_is_better: true", "higher_is_better: false")
    msg = run_card(capsys, tmp_path, folder)
    assert "metrics.quality.higher_is_better: accuracy is higher-is-better; set higher_is_better: true" in msg


def test_an_unknown_task_name_and_a_plugins_card_given_as_a_path(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("INFERSIGHT_TASKS", str(tmp_path / "none"))
    msg = fails(capsys, tmp_path, "run", "nope", "--quick")
    assert "unknown task 'nope'; known tasks: " in msg and "digits" in msg and "(user tasks from" in msg
    digits = REPO / "tasks" / "digits" / "task.yaml"
    msg = fails(capsys, tmp_path, "run", str(digits), "--quick")
    assert f"{digits}:1: the card names no task kind this installation knows (a section named declarative)" in msg
