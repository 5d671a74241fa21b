"""Fast versions of the reliability suite (benchmarks/reliability.py): the same harness, fewer trials."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _bad_inputs import run_cases, tally  # noqa: E402
from _faults import check_store, concurrent_writers, signal_trial  # noqa: E402


@pytest.mark.parametrize("kind, sig, delay_s", [("run", "SIGINT", 4.0), ("import", "SIGKILL", 4.5),
                                                ("sweep", "SIGTERM", 5.0)])
def test_a_signal_during_a_command_leaves_a_sound_store(digits_models, tmp_path, kind, sig, delay_s):
    result = signal_trial(kind, sig, delay_s, str(tmp_path / "s.db"), tmp_path)
    assert result == {"corrupt": 0, "running": 0, "lost": 0, "hung": 0, "tracebacks": 0}


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_eight_concurrent_writers_lose_nothing(request, tmp_path, engine):
    url = request.getfixturevalue("pg_store_url") if engine == "postgresql" else str(tmp_path / "s.db")
    assert concurrent_writers(url, writers=8, runs=1, records=2_000) == {"writers": 8, "runs": 8, "lost": 0,
                                                                         "errors": 0}
    assert check_store(url)["corrupt"] == 0


def test_generated_bad_inputs_are_all_refused_naming_the_place(digits_models, tmp_path):
    outcomes = run_cases(tmp_path, 60, seed=16)
    assert tally(outcomes) == {"cases": 60, "refused": 60, "traceback": 0, "accepted": 0, "no_place": 0,
                               "partial_write": 0}, [o for o in outcomes if o.verdict != "refused"]
    assert len({o.fault for o in outcomes}) >= 6  # the draw covers most faults
