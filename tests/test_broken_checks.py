"""The completeness check catches broken evidence: each fault is injected while a real run is stored,
the run ends `failed` naming the problem, and `infersight validate` exits non-zero naming it too."""

from __future__ import annotations

import numpy as np
import pytest

from infersight.cli import main
from runner.errors import InfersightError
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store

SMALL = {"max_sample_count": 2_000, "warmup_duration_ms": 0}


class TamperedCard(Store):
    """Stores the task card with one field changed, under the hash of the original."""

    def put_card(self, kind, card, card_hash, name):
        if kind == "task":
            card = {**card, "description": "changed after hashing"}
        return super().put_card(kind, card, card_hash, name)


class DroppedRecord(Store):
    """Loses the last per-query record of every append (the log's count disagrees with the summary)."""

    def append_perf_samples(self, run_id, columns):
        super().append_perf_samples(run_id, {k: np.asarray(v)[:-1] for k, v in columns.items()})


class Reordered(Store):
    """Swaps the issued and completed timestamps of one record."""

    def append_perf_samples(self, run_id, columns):
        columns = {k: np.array(v) for k, v in columns.items()}
        columns["issued_ns"][0], columns["completed_ns"][0] = columns["completed_ns"][0] + 1, columns["issued_ns"][0]
        super().append_perf_samples(run_id, columns)


class NoPerfLog(Store):
    def append_perf_samples(self, run_id, columns):
        pass


class NoAccuracyLog(Store):
    def put_accuracy_samples(self, run_id, *args, **kwargs):
        pass


@pytest.mark.parametrize("faulty, problem", [
    (TamperedCard, "task card: stored content does not hash to"),
    (DroppedRecord, "records but the summary counts"),
    (Reordered, "performance log: timestamps out of order"),
    (NoPerfLog, "performance log: no per-query records"),
    (NoAccuracyLog, "accuracy log: no per-sample predictions"),
])
def test_broken_evidence_fails_the_run_and_validate_names_it(digits_models, tmp_path, capsys, faulty, problem):
    db = tmp_path / "s.db"
    prep = prepare_run(RunRequest("digits", "null", "offline", scenario_settings=SMALL, quick=True))
    with faulty(str(db)) as store, pytest.raises(InfersightError, match="is incomplete"):
        execute_run(prep, store)
    with Store(str(db)) as store:
        run = store.list_runs()[0]
    assert run.status == "failed" and problem in run.error, run.error
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(run.id), "--db", str(db)])
    assert exit_info.value.code == 1 and problem in capsys.readouterr().out


def test_a_clean_run_passes_the_same_check(digits_models, tmp_path, capsys):
    db = tmp_path / "s.db"
    with Store(str(db)) as store:
        run_id = execute_run(prepare_run(RunRequest("digits", "null", "offline", scenario_settings=SMALL,
                                                    quick=True)), store)
        assert store.get_run(run_id).status == "complete"
    main(["validate", str(run_id), "--db", str(db)])
    assert "is complete" in capsys.readouterr().out


def test_a_damaged_card_row_is_named_damaged_not_missing(digits_models, tmp_path):
    import sqlite3

    from runner.validate import check_run

    db = tmp_path / "s.db"
    with Store(str(db)) as store:
        run_id = execute_run(prepare_run(RunRequest("digits", "null", "offline", scenario_settings=SMALL,
                                                    quick=True)), store)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE models SET card = '{broken'")
    with Store(str(db)) as store:
        problems = check_run(store, run_id)
    assert any(p.startswith("model card: ") and "is damaged" in p for p in problems), problems
