"""Meta-tests that keep the project complete: every plugin has tests and a docs entry."""

import ast
from pathlib import Path

import pytest

from runner import registry

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
TEST_FILES = sorted(p for p in (REPO / "tests").glob("test_*.py") if p.name != "test_meta.py")

# What a test must call to run a plugin of each kind (a CLI call counts when it runs `run` or `sweep`).
SERVICES = {"measure_run", "measure_replicas", "search_peak", "sweep_matrix"}  # runner.services
RUNNERS = {
    "task": {"execute_run", "prepare_run", "run_peak_search", "run_sweep", "sample_library", "evaluate", "build",
             *SERVICES},
    "backend": {"execute_run", "prepare_run", "run_peak_search", "run_sweep", "run_batch", "run_stream", *SERVICES},
    "scenario": {"execute_run", "prepare_run", "run_peak_search", "run_sweep", "measure", *SERVICES},
    "summary": {"execute_run", "run_summary"},
    "task_kind": {"execute_run", "prepare_run", "run_sweep", "sample_library", "evaluate", "build"},
}
CLI_CALLS, CLI_COMMANDS = {"cli", "main", "invoke"}, {"run", "peak", "sweep"}


def _called(node: ast.AST) -> set[str]:
    names = set()
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        func = call.func
        names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


def _strings(node: ast.AST) -> set[str]:
    """String constants of a test, its parametrize lists included, leaving out dict keys (a dict key
    "ci" says nothing about the plugin ci; a subscript ["ci"] reads what it stored, and counts)."""
    keys = {id(k) for d in ast.walk(node) if isinstance(d, ast.Dict) for k in d.keys if k is not None}
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in keys}


def _tests_running(kind: str) -> dict[str, list[str]]:
    """{plugin name: [test functions that call a runner of `kind` with that name among their strings]}."""
    found: dict[str, list[str]] = {}
    for path in TEST_FILES:
        tree = ast.parse(path.read_text())
        fixtures = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef) and not f.name.startswith("test_")}
        for fn in (f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")):
            used = [fn, *(fixtures[a.arg] for a in fn.args.args if a.arg in fixtures)]
            called = set().union(*map(_called, used))
            strings = set().union(*map(_strings, used))
            if called & RUNNERS[kind] or (called & CLI_CALLS and strings & CLI_COMMANDS):
                for name in strings:
                    found.setdefault(name, []).append(f"{path.name}::{fn.name}")
    return found


@pytest.mark.parametrize("kind, name", [(k, n) for k in registry.KINDS for n in registry.names(k)])
def test_every_plugin_has_a_test_and_a_docs_entry(kind, name):
    assert f"`{name}`" in README, f"README.md has no entry for {kind} `{name}`"
    assert _tests_running(kind).get(name), (f"no test runs {kind} {name!r} (a test must name it and call "
                                            f"one of {sorted(RUNNERS[kind])} or the CLI's run/sweep)")


def test_naming_a_plugin_in_a_dict_key_is_not_running_it(tmp_path, monkeypatch):
    fake = tmp_path / "test_fake.py"
    fake.write_text('def test_reads_a_dict():\n    assert {"ci": 1}["ci"] == 1\n\n'
                    'def test_runs_it(store):\n    execute_run(prepare_run(RunRequest("digits", "null")), store)\n')
    monkeypatch.setattr("test_meta.TEST_FILES", [fake])
    assert _tests_running("summary").get("ci") is None
    assert _tests_running("backend")["null"] == ["test_fake.py::test_runs_it"]


def test_readme_opens_with_the_two_setup_commands():
    code = README.split("```", 2)[1]
    assert code.split() == ["make", "demo", "make", "test"] or code.split()[1:] == ["make", "demo", "make", "test"]


def test_every_module_stays_readable():
    too_long = [str(p.relative_to(REPO)) for folder in ("runner", "tasks", "infersight", "analysis", "engine",
                                                         "reports", "benchmarks")
                for p in (REPO / folder).rglob("*.py") if len(p.read_text().splitlines()) > 450]
    assert not too_long, f"modules over 450 lines: {too_long}"
