"""The real CLI in a subprocess: end-to-end runs on digits, inspection commands, bad input."""

from __future__ import annotations

import json

import pytest

from conftest import cli


@pytest.fixture(scope="module")
def e2e_db(tmp_path_factory, digits_models):
    """One store with a quick single_stream run (fp32) and a quick offline run (int8)."""
    db = tmp_path_factory.mktemp("e2e") / "e2e.db"
    cli("run", "digits", "--scenario", "single_stream", "--quick", "--threads", "1", db=db, check=True)
    cli("run", "digits", "--scenario", "offline", "--model-variant", "int8", "--quick", db=db, check=True)
    return db


def test_single_stream_run_is_complete_and_valid(e2e_db):
    view = json.loads(cli("show", "1", "--json", db=e2e_db, check=True).stdout)
    run, cards = view["run"], view["cards"]
    assert run["status"] == "complete" and run["validity"] == "VALID", run
    assert run["scenario"] == "single_stream" and run["headline_metric"] == "latency_p90_ms"
    assert run["headline_value"] > 0 and run["summary"]["query_count"] >= 64
    assert run["quick"] and not run["compliant"]
    assert set(cards) == {"task", "model", "backend", "system"} and view["imported"] is None
    assert cards["backend"]["settings"]["intra_op_threads"] == 1
    assert cards["backend"]["runtime_version"] and view["title"].startswith("Run 1: digits")
    assert run["accuracy_passed"] and run["accuracy_value"] >= run["accuracy_target"]


def test_int8_offline_run_reports_its_real_accuracy(e2e_db):
    view = json.loads(cli("show", "2", "--json", db=e2e_db, check=True).stdout)
    run, model = view["run"], view["cards"]["model"]
    assert model["precision"] == "int8" and run["headline_metric"] == "samples_per_second"
    assert run["accuracy_target"] == pytest.approx(0.99 * model["reference_quality"]["fp32_reference"])
    assert run["accuracy_value"] == pytest.approx(model["reference_quality"]["value"], abs=1e-9)


def test_show_displays_four_cards_and_two_logs(e2e_db):
    text = cli("show", "1", db=e2e_db, check=True).stdout
    for word in ("task ", "model ", "backend ", "system ", "performance:", "accuracy:", "VALID", "sha256"):
        assert word in text, text


def test_validate_says_complete(e2e_db):
    proc = cli("validate", "1", db=e2e_db)
    assert proc.returncode == 0 and "is complete" in proc.stdout


def test_runs_lists_both_runs(e2e_db):
    rows = json.loads(cli("runs", "--json", db=e2e_db, check=True).stdout)
    assert [r["id"] for r in rows] == [2, 1]
    assert "single_stream" in cli("runs", db=e2e_db, check=True).stdout


def test_catalog_commands():
    tasks = json.loads(cli("tasks", "--json", check=True).stdout)
    by_name = {t["name"]: t for t in tasks}
    assert list(by_name) == sorted(by_name) and {"digits", "charlm"} <= set(by_name)
    assert set(by_name["digits"]["variants"]) == {"fp32", "int8"}
    plugins = json.loads(cli("plugins", "--json", check=True).stdout)
    assert {(p["kind"], p["name"]) for p in plugins} >= {("backend", "onnxruntime"), ("scenario", "offline")}
    system = json.loads(cli("system", "--json", check=True).stdout)
    assert system["host_processor_core_count"] >= 1 and len(system["hash"]) == 64


@pytest.mark.parametrize("args, message", [
    (["run", "nodigits"], "unknown task 'nodigits'; known tasks: charlm, digits"),
    (["run", "digits", "--backend", "tensorrt-llm"], "unknown backend 'tensorrt-llm'; known backends: null, onnxruntime"),
    (["run", "digits", "--scenario", "burst"], "unknown scenario 'burst'; known scenarios:"),
    (["run", "digits", "--threads", "0"], "backend onnxruntime: intra_op_threads: Input should be greater than or equal to 1"),
    (["run", "digits", "--set", "min_duration_ms=-5"], "scenario offline: min_duration_ms: Input should be greater than 0"),
    (["run", "digits", "--set", "min_durration_ms=5"], "scenario offline: min_durration_ms: unknown field"),
    (["run", "digits", "--model-variant", "fp64"], "task 'digits' has no model variant 'fp64'; variants: fp32, int8"),
    (["run", "digits", "--provider", "tpu"], "execution provider(s) tpu not available"),
    (["show", "999"], "999"),
    (["run", "digits", "--system-extra", "tests/data/bad_system_extra.yaml"],
     "tests/data/bad_system_extra.yaml:2: power_w: Input should be greater than or equal to 0"),
])
def test_bad_input_gives_one_clear_message_and_exit_2(tmp_path, digits_models, args, message):
    db = tmp_path / "bad.db"
    proc = cli(*args, db=db)
    assert proc.returncode == 2, proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr
    if args[0] == "run":  # nothing half-written
        assert json.loads(cli("runs", "--json", db=db, check=True).stdout) == []


def test_every_command_has_help_with_an_example():
    from infersight.cli import cli as group
    names = group.list_commands(None)
    assert {"run", "peak", "serve", "submit", "sync"} <= set(names)
    for name in names:
        proc = cli(name, "--help")
        assert proc.returncode == 0 and "Example:" in proc.stdout, name


def test_the_lazy_command_table_names_every_command_of_every_module():
    """The CLI imports a command's module only when it runs; its table must match the modules' COMMANDS."""
    import importlib
    import pkgutil

    import infersight.cli
    from infersight.cli import COMMAND_MODULES

    found = {}
    for info in pkgutil.iter_modules(infersight.cli.__path__):
        module = importlib.import_module(f"infersight.cli.{info.name}")
        found |= {command.name: info.name for command in getattr(module, "COMMANDS", ())}
    assert found == COMMAND_MODULES
