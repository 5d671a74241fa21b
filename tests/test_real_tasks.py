"""The real pretrained-model tasks: silero-vad (`vad`, stateful, chunk by chunk) and PP-OCRv4 (`ocr`, a
detector + recogniser pipeline), fetched from pinned PyPI wheels, measured on onnxruntime and OpenVINO."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import _built_models
from infersight.cli import main
from runner import registry
from runner.cards.task import PinnedModel
from runner.errors import CardError, ModelFileError
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store
from runner.task import file_sha256
from tasks._pypi import _extract, parse_source
from tasks.ocr import OcrTask

# Short runs: the run minimums lowered to a few queries (the runs are non-compliant and may be INVALID).
_SHORT = {"single_stream": {"min_query_count": 4, "min_duration_ms": 50, "warmup_duration_ms": 0},
          "offline": {"min_sample_count": 16, "min_duration_ms": 50, "warmup_duration_ms": 0}}


@pytest.fixture(scope="module")
def real_models() -> dict[str, Path]:
    """The vad and ocr models (fetched and built once if `make models` has not already)."""
    return {name: _built_models(name) for name in ("vad", "ocr")}


@pytest.mark.parametrize("name", ["vad", "ocr"])
def test_pinned_files_have_their_hashes_and_cards_name_licence_and_source(real_models, name):
    task = registry.get("task", name)()
    assert task.card.models, f"task {name} pins no model files"
    for key, pin in task.card.models.items():
        assert pin.source.startswith("pypi:") and pin.license, key
        assert file_sha256(task.models_dir / pin.file) == pin.sha256, key
    card, path = task.model_card("fp32")
    assert card.sha256 == task.card.models["fp32"].sha256 and path.name == task.card.models["fp32"].file
    pin = task.card.models["fp32"]
    assert card.source.startswith(pin.source) and card.license == pin.license
    int8, _ = task.model_card("int8")
    assert int8.source.startswith("quantized from pypi:") and int8.precision == "int8"
    target = task.card.metrics.quality.target.resolve(int8.reference_quality.fp32_reference)
    assert int8.reference_quality.value >= target, "int8 misses the quality target at build time"


@pytest.mark.parametrize("name, backend, variant, scenario", [
    ("vad", "onnxruntime", "fp32", "single_stream"), ("vad", "openvino", "int8", "offline"),
    ("ocr", "onnxruntime", "int8", "single_stream"), ("ocr", "openvino", "fp32", "offline")])
def test_quick_run_computes_quality_on_both_backends(real_models, store, name, backend, variant, scenario):
    req = RunRequest(name, backend=backend, scenario=scenario, model_variant=variant, quick=True,
                     scenario_settings=_SHORT[scenario], backend_settings={"batch_size": 8})
    prep = prepare_run(req)
    run = store.get_run(execute_run(prep, store))
    assert run.status == "complete" and run.backend_name == backend
    assert run.accuracy_passed, (run.accuracy_value, run.accuracy_target)
    assert run.accuracy_value == pytest.approx(prep.model.reference_quality.value, abs=0.01)
    rows = store.read_accuracy_samples(run.id)
    assert len(rows) == prep.task.card.data.datasets[0].samples


@pytest.fixture
def ocr_copy(tmp_path, real_models):
    """The ocr task with its card and built models copied to tmp_path, registered as `ocr`."""
    shutil.copy(OcrTask.card_file, tmp_path / "task.yaml")
    shutil.copytree(real_models["ocr"], tmp_path / "models")

    class OcrCopy(OcrTask):
        card_file = tmp_path / "task.yaml"

    registry.register("task", "ocr", OcrCopy)
    yield tmp_path / "models"
    registry.unregister("task", "ocr")


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code, " ".join(capsys.readouterr().err.split())


def _runs(db: Path) -> list:
    store = Store(str(db))
    try:
        return store.list_runs()
    finally:
        store.close()


def test_corrupt_part_of_a_pipeline_model_exits_2_and_stores_nothing(ocr_copy, tmp_path, capsys):
    path = ocr_copy / "ocr-int8-rec.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    db = tmp_path / "s.db"
    code, text = _run_cli(["run", "ocr", "--model-variant", "int8", "--quick", "--db", str(db)], capsys)
    assert code == 2 and "ocr-int8-rec.onnx: model file is corrupt or was changed" in text, text
    assert _runs(db) == []


def test_missing_pinned_model_exits_2_and_stores_nothing(ocr_copy, tmp_path, capsys):
    (ocr_copy / "ocr-fp32.onnx").unlink()
    db = tmp_path / "s.db"
    code, text = _run_cli(["run", "ocr", "--quick", "--db", str(db)], capsys)
    assert code == 2 and "ocr-fp32.onnx: model file missing" in text and "infersight build ocr" in text, text
    assert _runs(db) == []


def _wheel(tmp_path: Path, member: str, data: bytes) -> Path:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(member, data)
    return wheel


def test_a_file_that_does_not_match_its_pin_is_refused_and_not_written(tmp_path):
    wheel = _wheel(tmp_path, "pkg/model.onnx", b"not the pinned bytes")
    pin = PinnedModel(file="m.onnx", sha256="a" * 64, source="pypi:pkg==1.0:pkg/model.onnx", license="MIT")
    with pytest.raises(ModelFileError, match=r"pkg/model.onnx: sha256 .* differs from the task card's pinned aaaa"):
        _extract(wheel, "pkg/model.onnx", pin, tmp_path)
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(ModelFileError, match="has no file pkg/other.onnx"):
        _extract(wheel, "pkg/other.onnx", pin, tmp_path)


def test_a_pypi_source_names_package_version_and_path():
    assert parse_source("pypi:silero-vad==6.2.3:silero_vad/data/x.onnx", "here") == (
        "silero-vad", "6.2.3", "silero_vad/data/x.onnx")
    with pytest.raises(CardError, match="task.yaml: models.fp32: source 'https://x/y.onnx' is not"):
        parse_source("https://x/y.onnx", "task.yaml: models.fp32")


def test_a_wheel_that_does_not_match_its_pinned_sha256_is_refused(tmp_path):
    """The real fetch (pip download from the package registry, served from pip's cache after `make models`)."""
    from tasks._pypi import fetch_wheel

    with pytest.raises(ModelFileError, match=r"silero_vad-6.2.3-py3-none-any.whl: sha256 7b7f5436cfcb02fa\.\.\. "
                                             r"differs from the pinned 0000000000000000\.\.\. of silero-vad==6.2.3"):
        fetch_wheel("silero-vad", "6.2.3", "0" * 64, tmp_path)
