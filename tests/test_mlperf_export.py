"""Export to LoadGen's log formats, read back by the MLPerf importer's parsers to the same figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli
from runner.importers.mlperf.benchmarks import benchmark
from runner.importers.mlperf.detail import parse_detail
from runner.importers.mlperf.headline import select_headline
from runner.importers.mlperf.summary import parse_summary

# resnet50 stands in for any sample-based benchmark: it only chooses which field is the headline
GENERIC = benchmark("resnet50", "v4.1")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, digits_models):
    db = tmp_path_factory.mktemp("export") / "runs.db"
    out = tmp_path_factory.mktemp("tree")
    cli("run", "digits", "--scenario", "single_stream", "--quick", db=db, check=True)
    cli("run", "digits", "--scenario", "offline", "--quick", "--model-variant", "int8", db=db, check=True)
    runs = json.loads(cli("runs", "--json", db=db, check=True).stdout)
    folders = {}
    for run in runs:
        proc = cli("export", "mlperf", str(run["id"]), str(out), "--json", db=db, check=True)
        folders[run["scenario"]] = (run, json.loads(proc.stdout)["folder"])
    return folders


@pytest.mark.parametrize("scenario", ["single_stream", "offline"])
def test_round_trip_gives_the_same_headline_validity_and_percentiles(exported, scenario):
    run, folder = exported[scenario]
    folder = Path(folder)
    summary = parse_summary((folder / "mlperf_log_summary.txt").read_text())
    detail = parse_detail((folder / "mlperf_log_detail.txt").read_text())
    assert not summary["bad_lines"] and not detail.bad_lines and summary["complete"]
    assert summary["result_validity"] == run["validity"] == detail.get("result_validity")
    headline = select_headline(GENERIC, scenario, summary, detail, str(folder))
    assert headline.metric == run["headline_metric"]
    assert headline.value == pytest.approx(run["headline_value"], rel=1e-6)
    for pct in ("50", "90", "99"):
        ours = run["summary"][f"latency_p{pct}_ms"]
        assert summary["percentiles_ns"]["latency"][pct] / 1e6 == pytest.approx(ours, abs=1e-6)
    eff = detail.effective_settings()
    assert eff["min_duration_ms"] == run["settings"]["scenario"]["min_duration_ms"]
    assert eff["sample_index_rng_seed"] == run["settings"]["scenario"]["sample_index_rng_seed"]


def test_exported_tree_has_loadgen_layout_and_a_system_description(exported):
    _, folder = exported["offline"]
    folder = Path(folder)
    assert folder.parts[-6:-4] == ("results", folder.parts[-5]) and folder.parts[-3:] == ("Offline", "performance", "run_1")
    submitter = folder.parents[5]
    system = json.loads(next((submitter / "systems").glob("*.json")).read_text())
    assert system["host_processor_core_count"] >= 1 and "operating_system" in system


def test_export_of_a_missing_run_is_a_clear_error(tmp_path):
    proc = cli("export", "mlperf", "1", str(tmp_path / "out"), db=tmp_path / "empty.db")
    assert proc.returncode == 2 and "no run '1'" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_export_refuses_imported_or_unfinished_runs(store):
    from runner.errors import InfersightError
    from runner.exporters.mlperf import export_run
    from runner.importers import import_tree
    from test_mlperf_import import DATA

    import_tree(store, DATA / "closed" / "Google")
    with pytest.raises(InfersightError, match="only complete runs measured here can be exported"):
        export_run(store, 1, store_dir := Path("unused"))
    assert not store_dir.exists()
