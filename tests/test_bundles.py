"""Run bundles between two machines: export on machine B (a second system card, another host, its own
store), import on machine A; compare, repro, recommend and the reports then see two systems on one model.
Bad bundles give one clear message, exit 2, and store nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from analysis import views
from infersight.cli import main
from reports.compare import render_compare_report
from runner.bundles import export_bundle, import_bundle
from runner.errors import ImportFormatError
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store

SHORT = {"min_duration_ms": 300, "warmup_duration_ms": 0, "min_query_count": 640}  # 2+ batches of p90 figures
MACHINE_B = {"system_name": "Machine B (AMD EPYC 9654)", "host_processor_model_name": "AMD EPYC 9654 96-Core Processor",
             "host_processor_core_count": 96, "host_memory_capacity": "768 GB"}


def _measure(store: Store, system_changes: dict | None = None) -> int:
    """A real quick onnxruntime single_stream run of the pinned digits fp32 model into `store`."""
    prep = prepare_run(RunRequest("digits", "onnxruntime", "single_stream", backend_settings={"intra_op_threads": 1},
                                  scenario_settings=SHORT, quick=True))
    if system_changes:
        prep = dataclasses.replace(prep, system=prep.system.model_copy(update=system_changes))
    return execute_run(prep, store)


@pytest.fixture(scope="module")
def machines(tmp_path_factory, digits_models):
    """Store A (this host: two runs) and a bundle from store B (host machine-b: one run on a second system,
    one on a system card equal to A's, so the same configuration on a second host)."""
    root = tmp_path_factory.mktemp("machines")
    with Store(str(root / "a.db")) as a:
        here = [a.get_run(_measure(a)).uuid for _ in range(2)]
    with Store(str(root / "b.db")) as b:
        b.hostname = "machine-b"
        other = b.get_run(_measure(b, MACHINE_B)).uuid
        same = b.get_run(_measure(b)).uuid
        export_bundle(b, [other, same], root / "machine-b")
    return {"root": root, "here": here, "other": other, "same": same, "bundle": root / "machine-b"}


@pytest.fixture
def store_a(machines, tmp_path):
    """A copy of store A, for one test to change."""
    shutil.copy(machines["root"] / "a.db", tmp_path / "a.db")
    with Store(str(tmp_path / "a.db")) as store:
        yield store


def _archive(folder: Path, out: Path, kind: str) -> Path:
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    if kind == "zip":
        with zipfile.ZipFile(out, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(out, "w:gz") as tf:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return out


@pytest.mark.parametrize("kind", ["folder", "zip", "tar.gz"])
def test_import_keeps_run_cards_logs_and_the_other_system_and_is_idempotent(machines, store_a, tmp_path, kind):
    bundle = machines["bundle"] if kind == "folder" else _archive(machines["bundle"], tmp_path / f"b.{kind}", kind)
    result = import_bundle(store_a, bundle)
    assert len(result.imported) == 2 and result.already_present == () and result.hostname == "machine-b"
    with Store(str(machines["root"] / "b.db")) as b:
        for uuid in (machines["other"], machines["same"]):
            theirs, ours = b.get_run(uuid), store_a.get_run(uuid)
            for key in ("uuid", "hostname", "settings", "summary", "validity", "headline_value", "accuracy_value",
                        "started_at", "finished_at", "status", "task_hash", "model_hash", "backend_hash",
                        "system_hash"):
                assert getattr(ours, key) == getattr(theirs, key), key
            assert ours.provenance == "measured"
            assert f"run bundle {result.bundle_sha256[:12]} from machine-b" in ours.source
            for name, arr in b.read_perf_samples(theirs.id).items():
                assert np.array_equal(store_a.read_perf_samples(ours.id)[name], arr), name
            assert store_a.read_accuracy_samples(ours.id) == b.read_accuracy_samples(theirs.id)
    system = store_a.get_card("system", store_a.get_run(machines["other"]).system_hash)
    assert system["host_processor_model_name"] == MACHINE_B["host_processor_model_name"]  # B's card, kept
    count = len(store_a.list_runs(limit=None))
    again = import_bundle(store_a, bundle)
    assert again.imported == () and sorted(again.already_present) == sorted(result.imported)
    assert len(store_a.list_runs(limit=None)) == count


def test_two_machines_on_one_pinned_model_compare_repro_recommend_and_report(machines, store_a, capsys, tmp_path):
    import_bundle(store_a, machines["bundle"])
    a, b = machines["here"][0], machines["other"]
    db = ["--db", store_a.url]
    assert _cli(["compare", a, b, "--json", *db]) == 0  # same pinned model on two systems: no --force needed
    result = json.loads(capsys.readouterr().out)
    assert result["comparisons"][0]["verdict"] in ("equivalent", "different", "inconclusive")
    assert not any("differs" in w for w in result["warnings"])
    repro = views.repro_of_config(store_a, a)  # A's configuration: two runs here, one on machine-b
    assert len(repro["run_ids"]) == 3
    notes = repro["components"]["notes"]  # two hosts seen: the host level is estimated, or folded into the day's
    assert "level 'host' has one value only: left out" not in notes
    assert "host" in repro["components"]["n_groups"] or any(n.startswith("each host holds one day") for n in notes)
    assert _cli(["recommend", "--task", "digits", "--scenario", "single_stream", "--objective", "throughput",
                 "--json", *db]) == 0
    text = capsys.readouterr().out
    assert "Machine B (AMD EPYC 9654)" in text and "measured on machine-b (run bundle" in text
    html = render_compare_report(store_a, [a, b])
    assert "measured on machine-b (run bundle" in html


def _cli(args: list[str]) -> int:
    """The exit status of the CLI run in-process (0 when it returns)."""
    try:
        main(args)
    except SystemExit as exc:
        return exc.code or 0
    return 0


def _copy(machines, tmp_path) -> Path:
    folder = tmp_path / "bundle"
    shutil.copytree(machines["bundle"], folder)
    return folder


def _rehash(folder: Path, name: str) -> None:
    """Make the manifest agree with a changed file (so the deeper checks are what fails)."""
    manifest = json.loads((folder / "bundle.json").read_text())
    for entry in manifest["runs"]:
        prefix = entry["folder"] + "/"
        if name.startswith(prefix):
            data = (folder / name).read_bytes()
            entry["files"][name[len(prefix):]] = {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
    (folder / "bundle.json").write_text(json.dumps(manifest))


def _first(folder: Path, name: str) -> str:
    run = json.loads((folder / "bundle.json").read_text())["runs"][0]["folder"]
    return f"{run}/{name}"


def _missing_card(folder: Path) -> Path:
    (folder / _first(folder, "cards/system.json")).unlink()
    return folder


def _changed_card(folder: Path) -> Path:
    name = _first(folder, "cards/system.json")
    card = json.loads((folder / name).read_text())
    card["host_memory_capacity"] = "1 TB"
    (folder / name).write_text(json.dumps(card))
    _rehash(folder, name)
    return folder


def _changed_file(folder: Path) -> Path:
    name = _first(folder, "performance.json")
    (folder / name).write_text((folder / name).read_text().replace('"records"', '"records" ', 1))
    return folder


def _damaged_json(folder: Path) -> Path:
    (folder / "bundle.json").write_text('{"format": "infersight-run-bundle",\n"runs": [\n')  # cut short
    return folder


def _wrong_count(folder: Path) -> Path:
    name = _first(folder, "performance.json")
    perf = json.loads((folder / name).read_text())
    perf["records"] += 1
    (folder / name).write_text(json.dumps(perf))
    _rehash(folder, name)
    return folder


def _new_version(folder: Path) -> Path:
    manifest = json.loads((folder / "bundle.json").read_text())
    manifest["bundle_version"] = 99
    (folder / "bundle.json").write_text(json.dumps(manifest))
    return folder


def _traversal(folder: Path) -> Path:
    out = _archive(folder, folder.parent / "evil.zip", "zip")
    with zipfile.ZipFile(out, "a") as zf:
        zf.writestr("../../outside.txt", b"x")
    return out


def _tar_link(folder: Path) -> Path:
    out = _archive(folder, folder.parent / "link.tar.gz", "tar.gz")
    with tarfile.open(out, "r:gz") as tf:
        members = [(m, tf.extractfile(m).read()) for m in tf.getmembers()]
    with tarfile.open(out, "w:gz") as tf:
        for member, data in members:
            tf.addfile(member, io.BytesIO(data))
        link = tarfile.TarInfo("runs/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    return out


@pytest.mark.parametrize("spoil, message", [
    (_missing_card, "cards/system.json: missing from the bundle"),
    (_changed_card, "differs from the run's system card hash"),
    (_changed_file, "differs from the manifest's"),
    (_damaged_json, "bundle:bundle.json:3: malformed JSON: Expecting value"),
    (_wrong_count, "but performance.json says"),
    (_new_version, "bundle_version 99 is not supported"),
    (_traversal, "'../../outside.txt'"),
    (_tar_link, "is a link or device"),
])
def test_a_bad_bundle_gives_one_clear_message_exit_2_and_stores_nothing(machines, tmp_path, capsys, spoil, message):
    path = spoil(_copy(machines, tmp_path))
    db = tmp_path / "empty.db"
    with pytest.raises(SystemExit) as info:
        main(["import", "bundle", str(path), "--db", str(db)])
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path.parent / "outside.txt").exists()
    run_file = machines["bundle"] / _first(machines["bundle"], "run.json")
    system_hash = json.loads(run_file.read_text())["cards"]["system"]
    with Store(str(db)) as store:
        assert store.list_runs(limit=None) == []
        with pytest.raises(KeyError):
            store.get_card("system", system_hash)  # not even the cards


def test_export_refuses_an_existing_path_and_unknown_runs(machines, tmp_path, capsys):
    db = str(machines["root"] / "a.db")
    for args, message in ((["1", "--out", str(machines["bundle"])], "already exists"),
                          (["999", "--out", str(tmp_path / "x.zip")], "no run '999'")):
        with pytest.raises(SystemExit) as info:
            main(["export", "bundle", *args, "--db", db])
        assert info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


def test_an_import_cut_short_stores_nothing_and_a_retry_stores_it_once(machines, store_a, monkeypatch):
    from runner.store import _bundled

    written = []

    def fail_on_second_run(conn, run_id, arrays, chunk_rows):  # injected fault: the disk fills on the 2nd run
        if written:
            raise OSError("No space left on device")
        written.append(run_id)
        real(conn, run_id, arrays, chunk_rows)

    real = _bundled.write_chunks
    monkeypatch.setattr(_bundled, "write_chunks", fail_on_second_run)
    before = len(store_a.list_runs(limit=None))
    with pytest.raises(OSError):
        import_bundle(store_a, machines["bundle"])
    assert written and len(store_a.list_runs(limit=None)) == before  # the first run rolled back too
    monkeypatch.undo()
    result = import_bundle(store_a, machines["bundle"])
    assert len(result.imported) == 2 and not result.received_before
    assert len(store_a.list_runs(limit=None)) == before + 2
    again = import_bundle(store_a, machines["bundle"])
    assert again.received_before and again.imported == () and len(store_a.list_runs(limit=None)) == before + 2
