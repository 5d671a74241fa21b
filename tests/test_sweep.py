"""Sweeps: the file's validation (file:line), expansion, and real sweeps of isolated cells into SQLite.

The fault-injecting backends (a real segfault, a hang that ignores SIGTERM, a runtime that is
not installed) live in tests/plugins and reach the cells' processes through
$INFERSIGHT_EXTRA_PLUGINS, the registry's door for plugins that are not packaged.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import Field

from conftest import REPO
from runner import registry
from runner.cards._base import StrictModel
from runner.errors import CardError
from runner.store import Store
from runner.store.sweeps import SweepLog
from runner.sweep import plan_sweep
from runner.sweep.expand import _Where, expand_settings

PLUGINS = REPO / "tests" / "plugins"
EXTRA = ("backend:segfault=faulty_backends:SegfaultBackend;backend:hang=faulty_backends:HangBackend;"
         "backend:missing=missing_runtime_backend:MissingBackend")
FAST = {"single_stream": "{min_duration_ms: 100, warmup_duration_ms: 0, min_query_count: 64}",
        "offline": "{min_duration_ms: 100, warmup_duration_ms: 0, min_sample_count: 256}"}


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{PLUGINS}", registry.EXTRA_ENV: EXTRA, "COLUMNS": "200"}


def sweep_cli(path: Path, db: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "infersight", "sweep", str(path), "--db", str(db), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(), cwd=REPO)


@pytest.fixture
def extra_plugins(monkeypatch):
    """The test plugins, visible to this process's registry too."""
    monkeypatch.setenv(registry.EXTRA_ENV, EXTRA)
    monkeypatch.syspath_prepend(str(PLUGINS))
    registry._cache.pop("backend", None)
    yield
    registry._cache.pop("backend", None)


# -- validation: one message naming file, line and field, before anything runs ---------------------

@pytest.mark.parametrize("body, line, message", [
    ("tasks: [digits]\nthreads: [1, 2]\nbackends: [{name: onnxruntime}]\nscenarios: [{name: offline}]\n",
     3, "threads: unknown field"),
    ("tasks: [digits]\nbackends:\n  - name: onnxruntime\n    settings: {intra_op_thread: [1, 2]}\n"
     "scenarios: [{name: offline}]\n", 5, "backends.0.settings.intra_op_thread: unknown field"),
    ("tasks: [digits]\nbackends:\n  - name: openvino\n    settings:\n      - {performance_hint: fast}\n"
     "scenarios: [{name: offline}]\n", 6, "backends.0.settings.0.performance_hint: Input should be 'latency'"),
    ("tasks: [digits]\nbackends: [{name: onnxruntime, settings: {intra_op_threads: []}}]\n"
     "scenarios: [{name: offline}]\n", 3, "intra_op_threads: an empty list leaves no cells"),
    ("tasks: [digits]\nbackends: []\nscenarios: [{name: offline}]\n", 3, "backends: List should have at least 1"),
    ("tasks: [digits]\nbackends: [{name: onnxruntim}]\nscenarios: [{name: offline}]\n", 3,
     "backends.0.name: unknown backend 'onnxruntim'; known backends: "),
    ("tasks: [digits]\nbackends: [{name: null}]\nscenarios: [{name: offline, settings: {min_duration_ms: [10, 0]}}]\n",
     4, "scenarios.0.settings.min_duration_ms: Input should be greater than 0"),
    ("tasks: [digits]\nmodel_variants: [fp32, int4]\nbackends: [{name: null}]\nscenarios: [{name: offline}]\n",
     3, "model_variants.1: task digits: task 'digits' has no model variant 'int4'"),
    ("tasks: [digits]\nbackends: [{name: null}]\nscenarios: [{name: burst}]\n", 4,
     "scenarios.0.name: unknown scenario"),
    ("tasks: [digits]\nbackends: [{name: null}]\nscenarios: [{name: offline}]\ncpus: [0, 1-x]\n", 5,
     "cpus.1: --cpus '1-x': '1-x' is not a CPU id or range"),
])
def test_a_bad_sweep_file_is_refused_with_file_line_and_field(tmp_path, digits_models, body, line, message):
    path = write(tmp_path, "name: bad\n" + body)
    with pytest.raises(CardError) as info:
        plan_sweep(path)
    assert f"{path}:{line}: " in str(info.value) and message in str(info.value), str(info.value)


# -- expansion -----------------------------------------------------------------------------------

def test_expansion_takes_the_product_and_keys_are_stable(tmp_path, digits_models):
    path = write(tmp_path, """
        name: counts
        tasks: [digits]
        model_variants: [fp32, int8]
        backends:
          - name: null
          - name: onnxruntime
            settings: {intra_op_threads: [1, 2], providers: [cpu]}
          - name: onnxruntime
            settings: {providers: [[cpu], [cuda]]}
        scenarios:
          - name: single_stream
            settings: {min_duration_ms: [500, 1000]}
          - name: offline
            settings:
              - {min_sample_count: 2048}
        cpus: [0, "0-1"]
        repeats: 2
        quick: true
        """)
    plan = plan_sweep(path)
    # variants x backend combinations x cpus x scenario combinations x repeats
    assert len(plan.cells) == 2 * (1 + 2 + 2) * 2 * (2 + 1) * 2
    assert len({c.key for c in plan.cells}) == len(plan.cells)
    assert [c.key for c in plan_sweep(path).cells] == [c.key for c in plan.cells]
    flat = [c for c in plan.cells if c.request["backend_settings"].get("providers") == ["cpu"]]
    assert len(flat) == 2 * 3 * 2 * 3 * 2 and all(c.skip_reason is None for c in flat)
    cuda = [c for c in plan.cells if c.request["backend_settings"].get("providers") == ["cuda"]]
    assert cuda and all("CUDAExecutionProvider not available" in c.skip_reason for c in cuda)
    assert plan.cells[0].resolved["scenario_settings"]["min_duration_ms"] == 500
    assert [c.resolved["repeat"] for c in plan.cells[:1] + plan.cells[-1:]] == [0, 1]


class FutureServerSettings(StrictModel):
    """Settings shaped like a scenario that does not exist yet (a target QPS and a peak search)."""

    target_qps: float = Field(100.0, gt=0, description="Arrival rate.")
    find_peak: bool = Field(False, description="Search the highest valid QPS.")
    qps_list: list[float] = Field(default_factory=list, description="A setting that is itself a list.")


def test_scenario_parameters_pass_through_to_the_scenarios_settings_model(tmp_path):
    where = _Where(tmp_path / "x.yaml", {})
    combos = expand_settings({"target_qps": [100, 200, 400], "find_peak": True, "qps_list": [1, 2]},
                             FutureServerSettings, ("scenarios", 0, "settings"), where)
    assert [c for c, _ in combos] == [{"target_qps": q, "find_peak": True, "qps_list": [1, 2]} for q in (100, 200, 400)]
    nested = expand_settings({"qps_list": [[1], [2, 3]]}, FutureServerSettings, (), where)
    assert [c for c, _ in nested] == [{"qps_list": [1]}, {"qps_list": [2, 3]}]


def test_a_backend_missing_on_this_machine_plans_skipped_cells_with_the_reason(tmp_path, digits_models,
                                                                                extra_plugins):
    path = write(tmp_path, """
        name: missing
        tasks: [digits]
        backends: [{name: missing, settings: {batch_size: [8, 16]}}, {name: null}]
        scenarios: [{name: offline}]
        cpus: [0, 64]
        """)
    cells = plan_sweep(path).cells
    missing = [c for c in cells if c.request["backend"] == "missing"]
    assert len(missing) == 4 and all("cannot be loaded on this machine: No module named "
                                     "'infersight_runtime_that_is_not_installed'" in c.skip_reason for c in missing)
    null = [c for c in cells if c.request["backend"] == "null"]
    assert [c.skip_reason for c in null][0] is None and "CPU(s) 64 not available" in null[1].skip_reason


# -- real sweeps ---------------------------------------------------------------------------------

def test_a_small_real_sweep_runs_every_cell_in_its_own_process_and_resumes(tmp_path, digits_models):
    path = write(tmp_path, f"""
        name: small
        tasks: [digits]
        backends:
          - name: null
          - name: onnxruntime
            settings: {{providers: [[cpu], [cuda]]}}
          - name: missing
        scenarios:
          - name: single_stream
            settings: {FAST['single_stream']}
        cpus: [0]
        quick: true
        """)
    db = tmp_path / "sweep.db"
    first = sweep_cli(path, db, "--json")
    assert first.returncode == 0, first.stderr
    sweep = json.loads(first.stdout)
    status = {c["request"]["backend"] + str(c["request"]["backend_settings"]): c for c in sweep["cells"]}
    assert sweep["status"] == "partial" and len(sweep["cells"]) == 4
    assert status["null{}"]["status"] == status["onnxruntime{'providers': ['cpu']}"]["status"] == "complete"
    assert "CUDAExecutionProvider not available" in status["onnxruntime{'providers': ['cuda']}"]["reason"]
    assert "cannot be loaded on this machine" in status["missing{}"]["reason"]
    assert "done" in first.stderr and "skipped" in first.stderr  # the progress display's lines
    with Store(str(db)) as store:
        runs = store.list_runs()
        assert len(runs) == 2 and {r.label for r in runs} == {"small"}
        pinned = store.get_card("system", runs[0].system_hash)
        assert pinned["cpus_used"] == [0] and pinned["cpu_count_used"] == 1
        linked = SweepLog(store).sweep_of_run(runs[0].id)
        assert linked["name"] == "small" and linked["sweep_id"] == sweep["id"]
    again = sweep_cli(path, db, "--json")
    assert json.loads(again.stdout)["id"] == sweep["id"] and "done before" in again.stderr
    with Store(str(db)) as store:
        assert len(store.list_runs()) == 2  # nothing measured twice


def _complete_cells(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select count(*) from sweep_cells where status = 'complete'").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_resume_after_the_sweep_is_sigkilled_runs_only_the_missing_cells(tmp_path, digits_models):
    path = write(tmp_path, """
        name: killed
        tasks: [digits]
        backends: [{name: null}]
        scenarios:
          - name: single_stream
            settings: {min_duration_ms: [600, 601, 602, 603], warmup_duration_ms: 0, min_query_count: 64}
        quick: true
        """)
    db = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "infersight", "sweep", str(path), "--db", str(db)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 90
        while _complete_cells(db) < 2 and time.monotonic() < end:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with Store(str(db)) as store:
        before = {c.cell_key: c.run_id for c in SweepLog(store).get(1).cells if c.status == "complete"}
    assert len(before) >= 2
    second = sweep_cli(path, db, "--json")
    sweep = json.loads(second.stdout)
    assert second.returncode == 0 and sweep["status"] == "complete" and sweep["id"] == 1
    assert all(before[c["cell_key"]] == c["run_id"] for c in sweep["cells"] if c["cell_key"] in before)
    with Store(str(db)) as store:
        runs = store.list_runs(limit=None)
    complete = [r for r in runs if r.status == "complete"]
    assert len(complete) == 4  # each cell measured to completion exactly once
    assert all(r.status == "aborted" for r in runs if r not in complete)  # the cell killed with its sweep


def test_a_segfault_and_a_hang_fail_their_cells_with_the_reason_and_the_sweep_goes_on(tmp_path, digits_models):
    path = write(tmp_path, f"""
        name: faults
        tasks: [digits]
        backends: [{{name: segfault}}, {{name: hang}}, {{name: null}}]
        scenarios:
          - name: single_stream
            settings: {FAST['single_stream']}
        quick: true
        time_limit_s: 6
        """)
    db = tmp_path / "faults.db"
    proc = sweep_cli(path, db, "--json")
    assert proc.returncode == 1, proc.stderr  # some cells failed
    sweep = json.loads(proc.stdout)
    cells = {c["request"]["backend"]: c for c in sweep["cells"]}
    assert sweep["status"] == "failed" and cells["null"]["status"] == "complete"
    assert cells["segfault"]["status"] == "failed" and "died of signal SIGSEGV" in cells["segfault"]["reason"]
    assert cells["hang"]["status"] == "failed"
    assert "time limit of 6 s exceeded" in cells["hang"]["reason"] and "SIGKILL" in cells["hang"]["reason"]
    with Store(str(db)) as store:
        for name in ("segfault", "hang"):
            run = store.get_run(cells[name]["run_id"])
            assert run.status == "aborted" and "ended before the run finished" in run.error


def test_the_shipped_demo_sweep_plans_48_cells_over_both_backends_and_four_scenarios(digits_models, capsys):
    from infersight.cli import main

    main(["sweep", str(REPO / "tasks" / "digits" / "sweep-demo.yaml"), "--plan", "--json"])
    cells = json.loads(capsys.readouterr().out)["cells"]
    assert len(cells) == 48
    assert {c["request"]["backend"] for c in cells} == {"onnxruntime", "openvino"}
    assert {c["request"]["model_variant"] for c in cells} == {"fp32", "int8"}
    assert {c["request"]["cpus"] for c in cells} == {"0", "0-1"}
    assert {c["request"]["scenario"] for c in cells} == {"single_stream", "offline", "multi_stream", "server"}
    if len(os.sched_getaffinity(0)) >= 2:
        assert not any(c["skip_reason"] for c in cells)


def test_a_malformed_extra_plugins_variable_is_one_clear_error(monkeypatch):
    from runner.errors import SettingsError

    monkeypatch.setenv(registry.EXTRA_ENV, "backend=faulty_backends")
    registry._cache.pop("backend", None)
    try:
        with pytest.raises(SettingsError, match="expected KIND:NAME=MODULE:ATTRIBUTE"):
            registry.names("backend")
    finally:
        monkeypatch.delenv(registry.EXTRA_ENV)
        registry._cache.pop("backend", None)
