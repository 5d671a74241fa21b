"""Bring your own model: `infersight task new` scaffolds a declarative task from a real .onnx and data file,
and `infersight run path/to/task.yaml` measures it like a built-in task (onnxruntime and OpenVINO)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, top_k_accuracy_score

from _user_models import REGRESSOR_CARD, classification_data, colour_classifier, linear_classifier, two_input_regressor
from conftest import cli
from infersight.cli import main
from runner import registry
from runner.declarative import DeclarativeTask
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import RunRecord
from runner.task import file_sha256
from runner.user_tasks import open_task, task_rows

SHORT = {"single_stream": {"min_duration_ms": 200, "warmup_duration_ms": 0, "min_query_count": 64},
         "offline": {"min_duration_ms": 50, "warmup_duration_ms": 100, "min_sample_count": 300_000}}
# offline: these models run a sample in about a microsecond, and a warm-up estimate taken on a loaded machine
# may undershoot the timed rate (the query then ends before min_duration_ms): the sample count sizes the query


@pytest.fixture
def lin(tmp_path):
    """A linear classifier and an .npz of its inputs `x` and labels `label` (12 of 300 labels wrong)."""
    model, w = linear_classifier(tmp_path / "lin.onnx")
    x, y = classification_data(w)
    np.savez(tmp_path / "data.npz", x=x, label=y)
    return model, tmp_path / "data.npz", x, y, w


def measure(store, task: str, scenario: str, backend: str = "onnxruntime", variant: str = "fp32") -> RunRecord:
    req = RunRequest(task, backend, scenario, variant, scenario_settings=SHORT[scenario], quick=True)
    return store.get_run(execute_run(prepare_run(req), store))


def test_the_declarative_kind_is_found_through_the_registry(tmp_path, lin):
    model, data, *_ = lin
    main(["task", "new", "k", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "k")])
    prep = prepare_run(RunRequest(str(tmp_path / "k" / "task.yaml"), "null", "offline", "fp32", quick=True))
    assert type(prep.task) is registry.get("task_kind", "declarative") is DeclarativeTask


def test_task_new_with_an_npz_runs_offline_and_single_stream_at_once(tmp_path, lin, store):
    model, data, x, y, w = lin
    main(["task", "new", "lin", "--model", str(model), "--data", str(data), "--out", str(tmp_path / "lin")])
    card = tmp_path / "lin" / "task.yaml"
    pinned = yaml.safe_load(card.read_text())
    assert pinned["models"]["fp32"]["sha256"] == DeclarativeTask(card).model_card("fp32")[0].sha256
    assert pinned["declarative"]["references"] == {"key": "label"}
    assert pinned["metrics"]["quality"]["metric"] == "accuracy"
    expected = accuracy_score(y, np.argmax(x @ w, axis=1))  # sklearn on numpy's own answers: 288/300
    assert expected == pytest.approx(0.96)
    for scenario in ("offline", "single_stream"):
        run = measure(store, str(card), scenario)
        assert (run.status, run.validity) == ("complete", "VALID"), run.validity_reasons
        assert (run.task_name, run.scenario) == ("lin", scenario)
        assert run.accuracy_metric == "accuracy" and run.accuracy_value == pytest.approx(expected)
        assert run.accuracy_target == pytest.approx(0.99 * expected) and run.accuracy_passed
        assert run.settings["task_card"] == str(card)
    assert cli("validate", str(run.id), db=store.url.removeprefix("sqlite:///")).returncode == 0
    log = store.read_accuracy_samples(run.id)
    assert [a["prediction"] for a in log] == np.argmax(x @ w, axis=1).tolist()
    assert [a["reference"] for a in log] == y.tolist()


def test_a_hand_written_card_with_two_inputs_and_csv_columns_runs_through_the_real_cli(tmp_path, db_path):
    """The model card is made on the first run; references from a column; mse against an absolute target."""
    (tmp_path / "models").mkdir()
    model = two_input_regressor(tmp_path / "models" / "reg-fp32.onnx")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(200, 3)).astype(np.float32), columns=["a0", "a1", "b"])
    truth = frame.a0 + 2 * frame.a1 + 3 * frame.b
    frame["y"] = truth + np.where(np.arange(200) % 2, 0.1, -0.1)
    frame.to_csv(tmp_path / "samples.csv", index=False)
    card = tmp_path / "task.yaml"
    card.write_text(REGRESSOR_CARD.format(sha=_sha(model)))
    proc = cli("run", str(card), "--scenario", "offline", "--quick", "--set", "min_duration_ms=50", "--set",
               "min_sample_count=300000", "--json", db=db_path, check=True)
    run = json.loads(proc.stdout)
    assert (run["status"], run["validity"]) == ("complete", "VALID"), run["validity_reasons"]
    assert run["accuracy_metric"] == "mse"
    predicted = (frame[["a0", "a1"]].to_numpy(np.float32) @ np.array([1, 2], np.float32)
                 + 3 * frame.b.to_numpy(np.float32))
    assert run["accuracy_value"] == pytest.approx(mean_squared_error(frame.y, predicted), rel=1e-5)
    assert run["accuracy_value"] == pytest.approx(0.01, rel=1e-3) and run["accuracy_passed"]
    assert (tmp_path / "models" / "reg-fp32.onnx.card.json").is_file()


def _sha(path):
    from runner.task import file_sha256

    return file_sha256(path)


def test_parquet_data_f1_and_an_int8_variant_run_on_openvino(tmp_path, lin, store):
    model, _, x, y, w = lin
    pd.DataFrame({**{f"f{i}": x[:, i] for i in range(4)}, "species": y}).to_parquet(tmp_path / "iris.parquet")
    main(["task", "new", "iris", "--model", str(model), "--data", str(tmp_path / "iris.parquet"), "--labels",
          "species", "--metric", "f1", "--target", "0.5", "--int8", "--out", str(tmp_path / "iris")])
    card = tmp_path / "iris" / "task.yaml"
    assert set(yaml.safe_load(card.read_text())["models"]) == {"fp32", "int8"}
    run = measure(store, str(card), "offline", backend="openvino")
    assert (run.status, run.validity) == ("complete", "VALID")
    assert run.accuracy_value == pytest.approx(f1_score(y, np.argmax(x @ w, axis=1), average="macro"))
    assert run.accuracy_target == 0.5 and run.accuracy_passed
    int8 = measure(store, str(card), "offline", variant="int8")
    assert int8.status == "complete" and int8.accuracy_value > 0.8
    assert store.get_card("model", int8.model_hash)["precision"] == "int8"


def test_top_k_accuracy_takes_its_k_from_the_card(tmp_path, lin):
    model, data, x, y, w = lin
    main(["task", "new", "topk", "--model", str(model), "--data", str(data), "--metric", "top_k_accuracy",
          "--metric-option", "k=2", "--out", str(tmp_path / "topk")])
    task = DeclarativeTask(tmp_path / "topk" / "task.yaml")
    assert task.card.declarative.metric_options == {"k": 2}
    fp32, _ = task.model_card("fp32")
    assert fp32.reference_quality.value == pytest.approx(top_k_accuracy_score(y, x @ w, k=2))


def test_a_folder_of_images_with_class_subfolders(tmp_path, store):
    colours = {"red": (200, 10, 10), "green": (10, 200, 10), "blue": (10, 10, 200)}
    for name, rgb in colours.items():
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (6 + i, 5), rgb).save(tmp_path / "images" / name / f"{i}.png")
    main(["task", "new", "colours", "--model", str(colour_classifier(tmp_path / "c.onnx")), "--data",
          str(tmp_path / "images"), "--out", str(tmp_path / "colours")])
    run = measure(store, str(tmp_path / "colours" / "task.yaml"), "single_stream")
    # classes numbered in sorted folder order (blue, green, red) and the model's logits are (r, g, b)
    assert run.status == "complete" and run.accuracy_value == pytest.approx(1 / 3)


def test_infersight_tasks_lists_user_tasks_beside_the_built_ins(tmp_path, lin, monkeypatch, store):
    model, data, *_ = lin
    monkeypatch.setenv("INFERSIGHT_TASKS", str(tmp_path / "mine"))
    main(["task", "new", "lin", "--model", str(model), "--data", str(data)])
    card = tmp_path / "mine" / "lin" / "task.yaml"
    assert open_task("lin").card_file == card  # by name, from the user folder
    # a copy renamed elsewhere, run by its path: its model card is made again for the new name
    shutil.copytree(card.parent, tmp_path / "elsewhere")
    other = tmp_path / "elsewhere" / "task.yaml"
    other.write_text(other.read_text().replace("name: lin ", "name: other "))
    assert measure(store, str(other), "single_stream").status == "complete"
    rows = {r["name"]: r for r in task_rows(store)}
    assert rows["digits"]["source"].startswith("plugin")
    assert rows["lin"]["source"] == f"user folder: {card}" and rows["lin"]["variants"] == {"fp32": "built"}
    assert rows["other"]["source"] == f"run from path: {other}"
    assert "other" not in {r["name"] for r in task_rows()}  # without the store, only the user folders


def test_build_remakes_the_int8_variant_to_its_pin_and_a_sweep_plans_a_card_path(tmp_path, lin, capsys):
    model, data, *_ = lin
    main(["task", "new", "q", "--model", str(model), "--data", str(data), "--int8", "--out", str(tmp_path / "q")])
    card = tmp_path / "q" / "task.yaml"
    int8 = tmp_path / "q" / "models" / "q-int8.onnx"
    pinned = file_sha256(int8)
    int8.unlink()
    capsys.readouterr()
    main(["build", str(card)])  # made again by quantize_static: the same bytes as pinned, or refused
    fp32 = int8.with_name("q-fp32.onnx")
    assert capsys.readouterr().out.split() == ["built", f"{fp32}.card.json", "built", f"{int8}.card.json"]
    assert file_sha256(int8) == pinned
    with pytest.raises(SystemExit) as done:  # given files are their own reference: --check reads their bytes
        main(["build", str(card), "--check"])
    assert done.value.code == 0 and "int8: pinned sha256" in capsys.readouterr().out
    (tmp_path / "sweep.yaml").write_text(f"sweep_version: 1\nname: mine\ntasks: [{card}]\n"
                                         "model_variants: [fp32, int8]\nbackends: [{name: onnxruntime}]\n"
                                         "scenarios: [{name: offline}]\nquick: true\n")
    main(["sweep", str(tmp_path / "sweep.yaml"), "--plan", "--json"])
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert {(c["request"]["task"], c["request"]["model_variant"]) for c in cells} == {(str(card), "fp32"),
                                                                                       (str(card), "int8")}
