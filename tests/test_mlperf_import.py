"""The MLPerf importer against MLCommons' own answer key, on real v4.1 results and damaged copies."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _mlperf_copy import copy_result as _copy_result
from conftest import cli
from runner.errors import ImportFormatError
from runner.importers import import_tree
from runner.importers.mlperf import parse_detail, parse_summary
from runner.importers.mlperf.benchmarks import benchmark, headline_field
from runner.importers.mlperf.headline import select_headline
from runner.store import LATEST_VERSION, Store
from runner.validate import check_run

DATA = Path(__file__).resolve().parents[2] / "shared/data/mlperf/v4.1"
assert (DATA / "summary_results.json").is_file(), (
    f"MLPerf v4.1 results not found at {DATA}: the repository is meant to sit beside ../shared")
UNITS = {"Latency (ms)": "ms"}  # the answer key's spelling -> ours; the others are spelled alike
SERVER = "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/resnet50/Server"
OFFLINE = "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/resnet50/Offline"


def answer_key() -> dict[str, dict]:
    """summary_results.json rows by Location."""
    return {row["Location"]: row for row in json.loads((DATA / "summary_results.json").read_text())}


def matches_key(value: float, expected: float) -> bool:
    """Equal to the table's figure: within 1e-6, or equal after the table's rounding to 6 significant
    digits (C++'s default printing of doubles in LoadGen's detail log, which the table copies)."""
    return math.isclose(value, expected, rel_tol=1e-6) or float(f"{value:.6g}") == expected


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """The whole v4.1 folder imported once into a fresh store: (store, report, runs by source path)."""
    store = Store(str(tmp_path_factory.mktemp("mlperf") / "mlperf.db"))
    report = import_tree(store, DATA)
    runs = {r.imported["source_path"]: r for r in store.list_runs(source="mlperf", limit=None)}
    yield store, report, runs
    store.close()


# -- (a) the answer key ---------------------------------------------------------------------------

def test_every_headline_equals_the_answer_key(imported):
    store, report, runs = imported
    summaries = sorted(DATA.glob("*/*/results/*/*/*/performance/run_1/mlperf_log_summary.txt"))
    checked = 0
    for location, row in answer_key().items():
        if not (DATA / location).is_dir():
            continue
        run = runs[location]
        assert matches_key(run.headline_value, row["Performance_Result"]), (location, run.headline_value, row)
        assert run.headline_units == UNITS.get(row["Performance_Units"], row["Performance_Units"]), location
        checked += 1
    assert checked == len(summaries) == report.imported == len(runs) == 109
    assert report.results_skipped == 0


def test_accuracy_figures_and_power_equal_the_answer_key(imported):
    _, _, runs = imported
    for location, row in answer_key().items():
        if location not in runs:
            continue
        figures = runs[location].summary["accuracy"]
        words = row["Accuracy"].split()
        for metric, text in zip(words[::2], words[1::2]):
            decimals = len(text.partition(".")[2])
            assert round(figures[metric.rstrip(":")], decimals) == float(text), (location, metric)
        power = runs[location].imported["power"]
        if row.get("Power_Result") is not None and power is not None:
            assert power["value"] == pytest.approx(row["Power_Result"], rel=1e-9), location
            assert power["units"] == row["Power_Units"]
    with_power = [loc for loc, r in runs.items() if r.imported["power"]]
    assert len(with_power) == 4  # the fifth power result (r760_u6_slim offline) has no detail log: no window


def test_imported_runs_are_complete_runs_with_their_provenance(imported):
    store, _, runs = imported
    run = runs[SERVER]
    assert run.provenance == "imported" and run.status == "complete" and run.validity == "VALID"
    assert (run.task_name, run.task_version, run.scenario) == ("mlperf-resnet50", "4.1.0", "server")
    assert run.headline_metric == "queries_per_second" and run.compliant and not run.quick
    summary = run.summary
    assert summary["percentiles_ns"]["latency"]["99.9"] == 13311468
    assert summary["effective_settings"]["schedule_rng_seed"] == 14962580496156340209
    assert summary["effective_settings"]["target_qps"] == 632000
    imp = run.imported
    assert (imp["round"], imp["division"], imp["submitter"], imp["availability"]) == ("v4.1", "closed", "NVIDIA", "available")
    assert imp["accelerator"] == "8x NVIDIA H200-SXM-141GB" and imp["accelerators_per_node"] == 8
    assert imp["compliance"] == {"TEST01": "PASS", "TEST04": "PASS", "TEST05": "PASS"}
    latency = runs["closed/Lenovo/results/Lenovo_2xL4_TRT/resnet50/SingleStream"]
    assert latency.headline_metric == "latency_p90_ms" and latency.summary["early_stopping_ns"]["latency"]["90"] == 386829
    assert not check_run(store, run.id) and not check_run(store, latency.id)
    assert store.read_perf_samples(run.id)["completed_ns"].size == 0
    # every run with `provenance=True`: the imported ones carry the same provenance as under source='mlperf'
    every = store.list_runs(limit=None, provenance=True)
    assert {r.imported["source_path"]: r for r in every} == runs
    assert all("imported" not in r for r in store.list_runs(limit=None))


# -- (b) idempotency ------------------------------------------------------------------------------

def test_importing_twice_adds_nothing(imported):
    store, _, runs = imported
    again = import_tree(store, DATA)
    assert (again.imported, again.already_present, again.results_skipped) == (0, 109, 0)
    assert len(store.list_runs(limit=None)) == len(runs) == 109
    part = import_tree(store, DATA / "closed" / "Google")
    assert (part.imported, part.already_present) == (0, 4)


# -- (c) the system card keeps every field --------------------------------------------------------

def test_system_cards_keep_every_field_of_the_system_json(imported):
    store, _, runs = imported
    by_system = {Path(loc).parts[3]: run for loc, run in runs.items()}
    for path in sorted(DATA.glob("closed/*/systems/*.json")):
        data = json.loads(path.read_text())
        card = store.get_card("system", by_system[path.stem].system_hash)
        for key, value in data.items():
            assert card.get(key, card.get("other_fields", {}).get(key)) == value, (path, key)
    google = store.get_card("system", by_system["tpu_v5e_x4_flax"].system_hash)
    assert google["accelerators_per_node"] == "4" and google["other_software_stack"] == {
        "JAX TPU runtime": "flax==0.8.5, jax[tpu]==0.4.30"}
    assert runs["closed/Google/results/tpu_v5e_x4_flax/stable-diffusion-xl/server"].imported["accelerators_per_node"] == 4


# -- (d) bad input --------------------------------------------------------------------------------

def copy_result(location: str, root: Path) -> Path:
    return _copy_result(DATA, location, root)


def run_file(result: Path, name: str) -> Path:
    return result / "performance" / "run_1" / name


def import_copy(tmp_path: Path) -> tuple[Store, object, dict]:
    store = Store(str(tmp_path / "bad.db"))
    report = import_tree(store, tmp_path / "v4.1")
    runs = {r.imported["source_path"]: r for r in store.list_runs(source="mlperf", limit=None)}
    return store, report, runs


def skipped(report) -> dict[str, str]:
    return {s.file: s.reason for s in report.skipped}


def assert_no_wrong_number(runs: dict) -> None:
    key = answer_key()
    for location, run in runs.items():
        assert matches_key(run.headline_value, key[location]["Performance_Result"]), location


def test_truncated_summary_is_skipped_and_the_rest_imported(tmp_path):
    server = copy_result(SERVER, tmp_path)
    copy_result(OFFLINE, tmp_path)  # the result that must still import
    summary = run_file(server, "mlperf_log_summary.txt")
    text = summary.read_text()
    summary.write_text(text[:text.index("99.90 percentile")] + "99.90 percentile latency (ns)   : 133")
    store, report, runs = import_copy(tmp_path)
    assert list(runs) == [OFFLINE] and report.results_skipped == 1
    assert "truncated" in skipped(report)[f"{SERVER}/performance/run_1/mlperf_log_summary.txt"]
    assert_no_wrong_number(runs)


def test_garbled_detail_log_lines_are_listed_and_the_result_imported(tmp_path):
    server = copy_result(SERVER, tmp_path)
    detail = run_file(server, "mlperf_log_detail.txt")
    lines = detail.read_text().splitlines()
    lines[3] = lines[3][:40]  # a record cut mid-JSON
    lines.insert(10, "\x00\x17garbage that is no record")
    detail.write_text("\n".join(lines) + "\n")
    _, report, runs = import_copy(tmp_path)
    assert list(runs) == [SERVER]
    reason = skipped(report)[f"{SERVER}/performance/run_1/mlperf_log_detail.txt"]
    assert "line(s) 4, 11" in reason and "left out" in reason
    assert_no_wrong_number(runs)


def test_detail_log_contradicting_the_summary_stores_no_number(tmp_path):
    server = copy_result(SERVER, tmp_path)
    detail = run_file(server, "mlperf_log_detail.txt")
    text = detail.read_text()
    detail.write_text(text.replace('"result_completed_samples_per_sec", "value": 632229',
                                   '"result_completed_samples_per_sec", "value": 732229'))
    _, report, runs = import_copy(tmp_path)
    assert runs == {} and "disagree" in skipped(report)[f"{SERVER}/performance/run_1/mlperf_log_summary.txt"]


def test_result_without_its_system_json_is_skipped(tmp_path):
    server = copy_result(SERVER, tmp_path)
    (tmp_path / "v4.1/closed/NVIDIA/systems/H200-SXM-141GBx8_TRT.json").unlink()
    _, report, runs = import_copy(tmp_path)
    assert runs == {} and report.results_skipped == 1
    assert skipped(report)[f"{SERVER}/performance/run_1/mlperf_log_summary.txt"] == \
        "its system description systems/H200-SXM-141GBx8_TRT.json: missing"
    assert server.is_dir()


def test_system_json_is_read_within_the_loaders_limits_and_keeps_its_tolerance(tmp_path):
    copy_result(SERVER, tmp_path)
    system = tmp_path / "v4.1/closed/NVIDIA/systems/H200-SXM-141GBx8_TRT.json"
    published = system.read_text()
    system.write_text('{\n"submitter": ' + "[" * 100_000 + "]" * 100_000 + "}")  # json itself would recurse
    _, report, runs = import_copy(tmp_path)
    assert runs == {} and skipped(report)[f"{SERVER}/performance/run_1/mlperf_log_summary.txt"] == (
        f"its system description systems/H200-SXM-141GBx8_TRT.json: not readable JSON (2: nested deeper than "
        f"64 levels; not a file infersight reads)")
    (tmp_path / "bad.db").unlink()
    system.write_text(published.replace("{", '{"status": "available",', 1))  # a key given twice: the last kept
    _, report, runs = import_copy(tmp_path)
    assert list(runs) == [SERVER] and report.results_skipped == 0


def test_unknown_scenario_folder_is_skipped(tmp_path):
    server = copy_result(SERVER, tmp_path)
    server.rename(server.with_name("Burst"))
    copy_result(OFFLINE, tmp_path)
    _, report, runs = import_copy(tmp_path)
    assert list(runs) == [OFFLINE]
    assert "unknown scenario folder 'Burst'" in skipped(report)[SERVER.replace("Server", "Burst")]


def test_numbers_as_strings_are_read_exactly_or_not_at_all(tmp_path):
    offline = copy_result(OFFLINE, tmp_path)
    system = tmp_path / "v4.1/closed/NVIDIA/systems/H200-SXM-141GBx8_TRT.json"
    data = json.loads(system.read_text())
    system.write_text(json.dumps({**data, "accelerators_per_node": "8", "number_of_nodes": "1"}))
    detail = run_file(offline, "mlperf_log_detail.txt")
    detail.write_text(detail.read_text().replace('"result_samples_per_second", "value": 756960',
                                                 '"result_samples_per_second", "value": "756960"'))
    store, _, runs = import_copy(tmp_path)
    run = runs[OFFLINE]
    assert run.headline_value == 756960 and run.imported["accelerators_per_node"] == 8
    assert store.get_card("system", run.system_hash)["accelerators_per_node"] == "8"
    store.close()
    shutil.rmtree(tmp_path / "v4.1")
    offline = copy_result(OFFLINE, tmp_path)
    run_file(offline, "mlperf_log_detail.txt").unlink()
    summary = run_file(offline, "mlperf_log_summary.txt")
    summary.write_text(summary.read_text().replace("Samples per second: 756960", "Samples per second: 75x960"))
    (tmp_path / "bad.db").unlink()
    _, report, runs = import_copy(tmp_path)
    assert runs == {} and "line 7: the headline 'samples per second' reads '75x960'" in skipped(report)[
        f"{OFFLINE}/performance/run_1/mlperf_log_summary.txt"]


def test_missing_detail_log_imports_from_the_summary(tmp_path):
    server = copy_result(SERVER, tmp_path)
    run_file(server, "mlperf_log_detail.txt").unlink()
    store, report, runs = import_copy(tmp_path)
    run = runs[SERVER]
    assert run.headline_value == 632229.06 and run.summary["headline_source"] == "mlperf_log_summary.txt"
    assert run.summary["effective_settings"]["schedule_rng_seed"] == 14962580496156340209
    assert "missing" in skipped(report)[f"{SERVER}/performance/run_1/mlperf_log_detail.txt"]
    assert report.results_skipped == 0 and not check_run(store, run.id)
    assert_no_wrong_number(runs)


# -- (e) the parsers never raise anything but ImportFormatError ------------------------------------

REAL_SUMMARY = (DATA / SERVER / "performance/run_1/mlperf_log_summary.txt").read_text() if DATA.is_dir() else ""
REAL_DETAIL = (DATA / SERVER / "performance/run_1/mlperf_log_detail.txt").read_text()[:6000] if DATA.is_dir() else ""
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parses_or_format_error(parse, data) -> None:
    try:
        parse(data)
    except ImportFormatError:
        pass


@FUZZ
@given(st.one_of(st.text(), st.binary()))
def test_fuzz_parsers_on_arbitrary_input(data):
    _parses_or_format_error(parse_summary, data)
    _parses_or_format_error(parse_detail, data)


@FUZZ
@given(st.data())
def test_fuzz_parsers_on_damaged_real_logs(data):
    for parse, text in ((parse_summary, REAL_SUMMARY), (parse_detail, REAL_DETAIL)):
        raw = bytearray(text.encode())
        for _ in range(data.draw(st.integers(1, 8))):
            at = data.draw(st.integers(0, len(raw) - 1))
            raw[at:at + data.draw(st.integers(0, 40))] = data.draw(st.binary(max_size=12))
        _parses_or_format_error(parse, bytes(raw))
        _parses_or_format_error(parse, raw.decode("utf-8", "replace")[:data.draw(st.integers(0, len(raw)))])


_LABELS = ("SUT name", "Scenario", "Mode", "Result is", "Samples per second", "Completed samples per second",
           "Scheduled samples per second", "90th percentile latency (ns)", "90.0th percentile latency (ns)",
           "50.00 percentile latency (ns)", "  Min duration satisfied", "target_qps", " * Early stopping 90th "
           "percentile estimate", "Tokens per second (inferred)")
_HEADINGS = ("MLPerf Results Summary", "Additional Stats", "Test Parameters Used", "Early Stopping Result:",
             "TTFT Early Stopping Result:", "Recommendations:", "Per-query latency:  ", "=" * 48, "")
_VALUES = st.one_of(st.text(max_size=30), st.integers().map(str), st.floats().map(repr),
                    st.integers(0, 6000).map(lambda n: "9" * n), st.sampled_from(["VALID", "Yes", "NO", "Server"]))
_SUMMARY_LINES = st.one_of(
    st.sampled_from(_HEADINGS), st.builds("{} : {}".format, st.sampled_from(_LABELS), _VALUES),
    st.builds("{} {} encountered. See detailed log.".format, _VALUES, st.sampled_from(["warnings", "ERRORS"])))
_RECORDS = st.builds(lambda k, v: ":::MLLOG " + json.dumps({"key": k, "value": v}),
                     st.sampled_from(["result_samples_per_second", "effective_scenario", "result_validity",
                                      "test_datetime", "power_begin"]),
                     st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                               st.lists(st.integers(), max_size=3)))


@FUZZ
@given(st.lists(_SUMMARY_LINES, max_size=40), st.lists(st.one_of(_RECORDS, st.text(max_size=40)), max_size=20))
def test_fuzz_parsers_on_log_shaped_lines(summary_lines, detail_lines):
    _parses_or_format_error(parse_summary, "\n".join(summary_lines))
    _parses_or_format_error(parse_detail, "\n".join(detail_lines))


def test_parsers_refuse_text_that_is_no_log():
    with pytest.raises(ImportFormatError, match="not an MLPerf LoadGen summary"):
        parse_summary("hello\nworld: 3\n", "x.txt")
    with pytest.raises(ImportFormatError, match="no ':::MLLOG"):
        parse_detail("hello\n", "y.txt")


# -- (f) other rounds' wording --------------------------------------------------------------------

V40_SERVER = """================================================
MLPerf Results Summary
================================================
SUT name : LWIS_Server
Scenario : Server
Mode     : PerformanceOnly
Scheduled samples per second : 12345.67
Result is : VALID
  Performance constraints satisfied : Yes
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: Yes
Early Stopping Result:
 * Run successful.

================================================
Additional Stats
================================================
Min latency (ns)                : 4391129
50.00 percentile latency (ns)   : 12195535
99.00 percentile latency (ns)   : 12981655

No errors encountered during test.
"""

V5_SINGLE_STREAM = """MLPerf Results Summary
SUT name : PySUT
Scenario : SingleStream
Mode     : PerformanceOnly
90.0th percentile latency (ns) : 1234567
Result is : VALID
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: Yes
Early Stopping Result:
 * Processed at least 64 queries (4257).
 * Would discard 379 highest latency queries.
 * Early stopping 90.0th percentile estimate: 1240000
 * Early stopping 99.0th percentile estimate: 2006444060
Additional Stats
90.00 percentile latency (ns)   : 1234567
No warnings encountered during test.
No errors encountered during test.
"""


def test_v40_server_headline_is_the_scheduled_rate():
    summary = parse_summary(V40_SERVER)
    assert summary["headline"]["label"] == "scheduled samples per second" and summary["complete"]
    assert headline_field(benchmark("resnet50", "v4.0"), "server") == "result_scheduled_samples_per_sec"
    headline = select_headline(benchmark("resnet50", "v4.0"), "server", summary, None, "x")
    assert (headline.metric, headline.value, headline.units) == ("queries_per_second", 12345.67, "Queries/s")


def test_v5_wording_of_percentiles_and_early_stopping():
    summary = parse_summary(V5_SINGLE_STREAM)
    assert summary["values"]["90.0th percentile latency (ns)"] == 1234567
    assert summary["early_stopping"]["latency"] == {"90": 1240000, "99": 2006444060}
    headline = select_headline(benchmark("3d-unet", "v5.0"), "single_stream", summary, None, "x")
    assert (headline.metric, headline.value, headline.units) == ("latency_p90_ms", 1.24, "ms")


def test_interactive_folder_holding_a_server_run_imports(tmp_path):
    location = "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/llama2-70b-99/Server"
    result = copy_result(location, tmp_path)
    result.rename(result.with_name("Interactive"))
    (tmp_path / "v4.1").rename(tmp_path / "v5.1")
    store = Store(str(tmp_path / "v5.db"))
    report = import_tree(store, tmp_path / "v5.1")
    run = store.list_runs(source="mlperf")[0]
    assert report.imported == 1 and run.scenario == "interactive" and run.summary["scenario_in_log"] == "Server"
    assert run.headline_value == answer_key()[location]["Performance_Result"] and run.headline_units == "Tokens/s"
    assert run.task_version == "5.1.0" and run.imported["round"] == "v5.1"


# -- store migration and the real CLI -------------------------------------------------------------

def test_a_version_1_store_gains_imported_runs(tmp_path):
    db = tmp_path / "old.db"
    Store(str(db)).close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE imported_runs")
    conn.execute("DELETE FROM schema_version WHERE version > 1")
    conn.commit()
    conn.close()
    with Store(str(db)) as store:
        assert store.schema_version() == LATEST_VERSION >= 2
        assert store.list_runs(source="mlperf") == []


def test_cli_imports_a_subtree_and_lists_it(tmp_path):
    for location in (SERVER, "closed/Google/results/tpu_v6_x4_flax/stable-diffusion-xl/server"):
        copy_result(location, tmp_path)
    db = tmp_path / "cli.db"
    first = cli("import", "mlperf", str(tmp_path / "v4.1"), db=db, check=True)
    assert "imported 2, already present 0" in first.stdout
    again = json.loads(cli("import", "mlperf", str(tmp_path / "v4.1"), "--json", db=db, check=True).stdout)
    assert (again["imported"], again["already_present"]) == (0, 2)
    rows = json.loads(cli("runs", "--source", "mlperf", "--json", db=db, check=True).stdout)
    assert {(r["imported"]["system_name"], r["imported"]["accelerator"], r["scenario"], r["headline_units"])
            for r in rows} == {("NVIDIA H200 (8x H200-SXM-141GB, TensorRT)", "8x NVIDIA H200-SXM-141GB", "server",
                                "Queries/s"), ("tpu-v6-4", "4x TPU v6", "server", "Queries/s")}
    table = cli("runs", "--source", "mlperf", db=db, check=True).stdout
    for word in ("8x NVIDIA H200-SXM-141GB", "resnet50", "queries_per_second", "Queries/s", "accelerator"):
        assert word in table, table
    shown = cli("show", str(rows[0]["id"]), db=db, check=True).stdout
    assert "performance: MLPerf summary, no per-query records" in shown
    assert cli("validate", str(rows[0]["id"]), db=db).returncode == 0
    assert json.loads(cli("runs", "--source", "measured", "--json", db=db, check=True).stdout) == []


def test_import_into_postgresql(pg_store_url, tmp_path):
    for location in (SERVER, "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/dlrm-v2-99/Server"):
        copy_result(location, tmp_path)
    with Store(pg_store_url) as store:
        first, again = import_tree(store, tmp_path / "v4.1"), import_tree(store, tmp_path / "v4.1")
        runs = {r.imported["source_path"]: r for r in store.list_runs(source="mlperf")}
        assert (first.imported, again.imported, again.already_present) == (2, 0, 2)
        assert_no_wrong_number(runs)
        assert runs[SERVER].summary["effective_settings"]["schedule_rng_seed"] == 14962580496156340209
        assert store.find_imported("v4.1", SERVER)["run_id"] == runs[SERVER].id
