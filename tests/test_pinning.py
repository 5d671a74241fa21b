"""The hardware axis: --cpus pins a run, the system card records the cores used, threads follow them.

Also what a run costs: peak RSS and CPU utilisation in its summary, shown by `infersight show`.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from conftest import cli
from infersight.cli import main
from runner import registry
from runner.backends.openvino import OpenVinoBackend
from runner.cpus import available_cpus, format_cpus, parse_cpus, validate_cpus
from runner.errors import SettingsError
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store

SHORT = {"min_duration_ms": 200, "warmup_duration_ms": 0, "min_query_count": 64}


@pytest.mark.parametrize("spec, cpus", [("0", [0]), ("0-1", [0, 1]), ("0,2", [0, 2]), (" 3,0-1 ", [0, 1, 3]),
                                        (1, [1]), ([2, 0, 2], [0, 2])])
def test_cpu_lists_are_read_as_linux_writes_them(spec, cpus):
    assert parse_cpus(spec) == cpus
    assert parse_cpus(format_cpus(cpus)) == cpus


@pytest.mark.parametrize("spec, message", [
    ("a", "'a' is not a CPU id or range"), ("1-0", "range '1-0' runs backwards"), ("0,,1", "'' is not a CPU id"),
    ("-1", "'-1' is not a CPU id"), (str(os.cpu_count()), f"CPU(s) {os.cpu_count()} not available on this machine"),
])
def test_bad_cpus_exit_2_with_one_clear_message(tmp_path, capsys, spec, message):
    with pytest.raises(SystemExit) as info:
        main(["run", "digits", "--cpus", spec, "--quick", "--db", str(tmp_path / "none.db")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: --cpus" in err and message in err and "Traceback" not in err
    if (tmp_path / "none.db").exists():
        with Store(str(tmp_path / "none.db")) as store:
            assert store.list_runs() == []  # nothing written


def test_validate_cpus_lists_what_this_process_may_use():
    with pytest.raises(SettingsError) as info:
        validate_cpus([0, 4096])
    assert f"may use CPUs {format_cpus(available_cpus())}" in str(info.value)


def test_a_run_pinned_to_cpu_0_records_one_core_and_uses_one_thread(digits_models, store):
    before = os.sched_getaffinity(0)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    pinned = store.get_run(execute_run(prepare_run(
        RunRequest("digits", "onnxruntime", "single_stream", scenario_settings=SHORT, quick=True, cpus="0")), store))
    cpu_used, wall_used = time.process_time() - cpu_before, time.perf_counter() - wall_before
    assert os.sched_getaffinity(0) == before  # restored in-process
    system = store.get_card("system", pinned.system_hash)
    assert system["cpus_used"] == [0] and system["cpu_count_used"] == 1
    assert store.get_card("backend", pinned.backend_hash)["settings"]["intra_op_threads"] == 1
    assert pinned.settings["backend"]["intra_op_threads"] == 1
    s = pinned.summary
    assert s["cpu_cores_available"] == 1 and s["cpu_utilisation_span"] == "timed part"
    # against the process's own CPU clock, not a fixed range (a loaded machine lowers the utilisation):
    # the timed part is a share of the call, and one core gives at most one CPU second a second
    assert 0 < s["cpu_time_s"] <= cpu_used and 0 < s["cpu_wall_s"] <= wall_used
    assert s["cpu_utilisation"] == pytest.approx(s["cpu_time_s"] / s["cpu_wall_s"], rel=1e-3)
    assert s["cpu_utilisation"] <= 1.05
    assert s["peak_rss_bytes"] > 20 * 2**20 and s["peak_rss_scope"] == "run"
    unpinned = store.get_run(execute_run(prepare_run(
        RunRequest("digits", "onnxruntime", "single_stream", scenario_settings=SHORT, quick=True)), store))
    assert unpinned.system_hash != pinned.system_hash  # "1 core" and "all cores" are distinct systems


def test_openvino_pinned_in_process_after_it_started_uses_one_thread(digits_models, store):
    task = registry.get("task", "digits")()
    unpinned = OpenVinoBackend()
    unpinned.prepare(*task.model_card("int8"))  # OpenVINO starts unpinned: it reads the CPU mask once, now
    unpinned.teardown()
    req = RunRequest("digits", "openvino", "offline", "int8", {"performance_hint": "throughput"},
                     {"min_duration_ms": 200, "warmup_duration_ms": 0, "min_sample_count": 512}, quick=True, cpus="0")
    run = store.get_run(execute_run(prepare_run(req), store))
    settings = store.get_card("backend", run.backend_hash)["settings"]
    assert settings["inference_num_threads"] == 1 and settings["num_streams"] == 1


def test_the_cli_pins_a_run_and_show_reports_its_cores_memory_and_utilisation(digits_models, tmp_path):
    db = tmp_path / "pin.db"
    proc = cli("run", "digits", "--backend", "openvino", "--scenario", "single_stream", "--cpus", "0", "--quick",
               "--set", "min_duration_ms=200", "--set", "warmup_duration_ms=0", "--json", db=db, check=True)
    run = json.loads(proc.stdout)
    assert run["summary"]["cpu_cores_available"] == 1 and run["settings"]["backend"]["inference_num_threads"] == 1
    shown = cli("show", str(run["id"]), db=db, check=True).stdout
    assert "(run pinned to 1 of them: CPUs 0)" in shown
    assert "resources: peak RSS " in shown and "of 1 core(s) over the timed part" in shown
