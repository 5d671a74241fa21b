"""Pinned reference models: the committed digits and charlm files have the sha256 their task cards pin,
a run refuses other bytes, `infersight build` never replaces a pinned file with other bytes, `--check`
reports per variant, and `compare` explains runs made with an unpinned model of other bytes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

import onnx
import pytest

from conftest import REPO
from infersight.cli import main
from analysis.views import compare_refs
from runner import registry
from runner.errors import AnalysisError
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store
from runner.task import file_sha256
from tasks.digits import DigitsTask

# The pins, written out: changing a committed model (or its pin) must be a deliberate change of this test too.
PINS = {
    ("digits", "fp32"): "45ff17b29fbae68818b16e94b493ff0e6a3b21b1a2f371509585e2dc0cce9ef7",
    ("digits", "int8"): "6a465f03bbf689d9d74b228b3b6994491b65e9ebb7ce3111b0da1f37da3b21e2",
    ("charlm", "fp32"): "ab9d3061db649213ddad89c5ff0de71615a85d77f74331e21a567a13ffc2c00e",
    ("charlm", "int8"): "9cb6fc8de9ccff9c8130894a32dd396c22407c9fb2700cfb285c83be35f15826",
}
SHORT = {"min_duration_ms": 300, "warmup_duration_ms": 0, "min_query_count": 640}  # 2+ batches of p90


@pytest.mark.parametrize("name", ["digits", "charlm"])
def test_committed_reference_models_have_their_pinned_hashes(name):
    task = registry.get("task", name)()
    folder = task.models_dir.relative_to(REPO).as_posix()
    tracked = set(subprocess.run(["git", "ls-files", folder], cwd=REPO, capture_output=True, text=True,
                                 check=True).stdout.split())
    assert sorted(task.card.models) == sorted(task.variants)
    for variant, pin in task.card.models.items():
        path = task.models_dir / pin.file
        assert pin.sha256 == PINS[name, variant] and file_sha256(path) == pin.sha256
        assert {f"{folder}/{pin.file}", f"{folder}/{pin.file}.card.json"} <= tracked  # committed, card too
        card, _ = task.model_card(variant)
        assert card.sha256 == pin.sha256 and card.file == pin.file and card.size_bytes == path.stat().st_size
        assert path.stat().st_size < 10 * 2**20 and pin.source == "committed" and pin.license == "Apache-2.0"


@pytest.fixture
def pinned_copy(tmp_path, digits_models):
    """The digits task (pinned card, committed models) copied to tmp_path and registered as `digits`, with
    a fast stand-in for its two-minute training: the build writes the pinned bytes, or other bytes (and a
    lower quality) for the variants in `differ`, as a machine whose BLAS rounds differently would."""
    shutil.copy(DigitsTask.card_file, tmp_path / "task.yaml")
    shutil.copytree(digits_models, tmp_path / "models", ignore=shutil.ignore_patterns("*.npz", ".*"))

    class Rebuilt(DigitsTask):
        card_file = tmp_path / "task.yaml"
        differ: ClassVar[tuple[str, ...]] = ()

        def build(self, progress: bool = True, out_dir: Path | None = None) -> list[Path]:
            out = Path(out_dir or self.models_dir)
            return [_write_variant(digits_models, out, v, v in self.differ) for v in self.variants]

    registry.register("task", "digits", Rebuilt)
    yield Rebuilt
    registry.unregister("task", "digits")


def _other_bytes(data: bytes) -> bytes:
    """The same network with other bytes (a doc string), as a rebuild on another CPU gives other weights."""
    model = onnx.load_from_string(data)
    model.doc_string = "rebuilt on another machine"
    return model.SerializeToString()


def _write_variant(source: Path, out: Path, variant: str, differ: bool) -> Path:
    data = (source / f"digits-{variant}.onnx").read_bytes()
    data = _other_bytes(data) if differ else data
    card = json.loads((source / f"digits-{variant}.onnx.card.json").read_text())
    card["sha256"], card["size_bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    if differ:
        card["reference_quality"]["value"] = 0.975
    (out / f"digits-{variant}.onnx").write_bytes(data)
    (out / f"digits-{variant}.onnx.card.json").write_text(json.dumps(card))
    return out / f"digits-{variant}.onnx.card.json"


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def _folder_state(folder: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir())}


def test_a_run_refuses_a_model_file_whose_bytes_are_not_the_pinned_ones(pinned_copy, tmp_path, capsys):
    models = tmp_path / "models"
    _write_variant(models, models, "fp32", differ=True)  # a consistent file and card, but other bytes
    actual = file_sha256(models / "digits-fp32.onnx")
    db = tmp_path / "s.db"
    code, _, err = _cli(["run", "digits", "--quick", "--db", str(db)], capsys)
    assert code == 2 and "Traceback" not in err
    assert f"{models / 'digits-fp32.onnx'}: sha256 {actual} does not match the sha256 {PINS['digits', 'fp32']}" in err
    assert "(models.fp32)" in err and "git checkout" in err
    with Store(str(db)) as store:
        assert store.list_runs(limit=None) == []


def test_build_with_the_pinned_files_present_rebuilds_nothing(pinned_copy, tmp_path, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "models").iterdir()}
    code, out, _ = _cli(["build", "digits"], capsys)
    assert code == 0 and "pinned reference files present with their pinned sha256; nothing rebuilt" in out
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "models").iterdir()} == before


def test_build_restores_a_missing_pinned_file_when_the_rebuild_reproduces_it(pinned_copy, tmp_path, capsys):
    (tmp_path / "models" / "digits-fp32.onnx").unlink()
    card = (tmp_path / "models" / "digits-fp32.onnx.card.json").read_bytes()
    code, out, _ = _cli(["build", "digits"], capsys)
    assert code == 0 and "restored (rebuilt with the pinned bytes)" in out
    assert file_sha256(tmp_path / "models" / "digits-fp32.onnx") == PINS["digits", "fp32"]
    assert (tmp_path / "models" / "digits-fp32.onnx.card.json").read_bytes() == card  # the committed card kept
    assert sorted(p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".")) == []


def test_build_never_replaces_a_pinned_file_with_other_bytes(pinned_copy, tmp_path, capsys):
    pinned_copy.differ = ("fp32",)
    path = tmp_path / "models" / "digits-fp32.onnx"
    path.write_bytes(path.read_bytes()[:-10])  # changed here; this machine's rebuild differs from the pin too
    before = _folder_state(tmp_path / "models")
    code, out, err = _cli(["build", "digits"], capsys)
    assert code == 2 and "nothing was installed" in err and "Traceback" not in err
    rebuilt = hashlib.sha256(_other_bytes((REPO / "tasks/digits/models/digits-fp32.onnx").read_bytes())).hexdigest()
    assert f"pinned sha256 {PINS['digits', 'fp32']}, rebuilt {rebuilt}" in err and "git checkout" in err
    assert _folder_state(tmp_path / "models") == before  # nothing replaced, nothing left behind


def test_check_reports_per_variant_and_changes_nothing(pinned_copy, tmp_path, capsys):
    pinned_copy.differ = ("int8",)
    before = _folder_state(tmp_path / "models")
    code, out, _ = _cli(["build", "digits", "--check", "--json"], capsys)
    assert code == 1  # not every variant reproduced
    variants = {v["variant"]: v for v in json.loads(out)["variants"]}
    assert variants["fp32"]["reproduced"] is True and variants["fp32"]["rebuilt_sha256"] == PINS["digits", "fp32"]
    assert variants["int8"]["reproduced"] is False and variants["int8"]["rebuilt_sha256"] != PINS["digits", "int8"]
    assert variants["int8"]["rebuilt_quality"] == 0.975 and variants["int8"]["metric"] == "top1_accuracy"
    assert variants["int8"]["pinned_quality"] == pytest.approx(0.98333, abs=1e-4)
    assert _folder_state(tmp_path / "models") == before
    code, out, _ = _cli(["build", "digits", "--check"], capsys)
    assert code == 1 and f"digits fp32: pinned sha256 {PINS['digits', 'fp32']}: reproduced" in out
    assert f"digits int8: pinned sha256 {PINS['digits', 'int8']}: NOT reproduced (rebuilt sha256" in out


def test_compare_explains_a_run_made_with_an_unpinned_model_of_other_bytes(pinned_copy, tmp_path, store):
    def measure() -> int:
        req = RunRequest("digits", "onnxruntime", "single_stream", backend_settings={"intra_op_threads": 1},
                         scenario_settings=SHORT, quick=True)
        return execute_run(prepare_run(req), store)

    pinned = measure()
    card_file, models = tmp_path / "task.yaml", tmp_path / "models"
    card_file.write_text(card_file.read_text().split("\n# The reference model files")[0] + "\n")  # as before pins
    before_pins = measure()  # the same bytes, before the task card pinned them: the same model card and hash
    assert store.get_run(before_pins).task_hash != store.get_run(pinned).task_hash
    assert compare_refs(store, [str(pinned), str(before_pins)])["metric"] == "latency_p90_ms"
    _write_variant(models, models, "fp32", differ=True)  # an old build of other bytes
    unpinned = measure()
    with pytest.raises(AnalysisError) as info:
        compare_refs(store, [str(pinned), str(unpinned)])
    text = str(info.value)
    assert "model_hash differs" in text and "use --force" in text
    assert f"run(s) {pinned}: digits-fp32.onnx sha256 {PINS['digits', 'fp32'][:16]} (the pinned reference)" in text
    assert f"run(s) {unpinned}: digits-fp32.onnx sha256" in text and "(unpinned)" in text
