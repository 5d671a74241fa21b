"""Meta-tests that keep the project complete: every plugin has tests and a docs entry."""

from pathlib import Path

import pytest

from runner import registry

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
TESTS = "\n".join(p.read_text() for p in (REPO / "tests").glob("test_*.py") if p.name != "test_meta.py")


@pytest.mark.parametrize("kind, name", [(k, n) for k in registry.KINDS for n in registry.names(k)])
def test_every_plugin_has_a_test_and_a_docs_entry(kind, name):
    assert f"`{name}`" in README, f"README.md has no entry for {kind} `{name}`"
    assert f'"{name}"' in TESTS, f"no test names {kind} {name!r}"


def test_readme_opens_with_the_two_setup_commands():
    code = README.split("```", 2)[1]
    assert code.split() == ["make", "demo", "make", "test"] or code.split()[1:] == ["make", "demo", "make", "test"]


def test_every_module_stays_readable():
    too_long = [str(p.relative_to(REPO)) for folder in ("runner", "tasks", "infersight", "analysis", "engine",
                                                         "reports", "benchmarks")
                for p in (REPO / folder).rglob("*.py") if len(p.read_text().splitlines()) > 450]
    assert not too_long, f"modules over 450 lines: {too_long}"
