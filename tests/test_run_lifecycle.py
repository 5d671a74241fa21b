"""A run's life: SIGKILL leaves it aborted with its samples kept; Ctrl-C marks it aborted at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import REPO
from runner import registry
from runner.backends.null import NullBackend
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store


def _wait_for_samples(db, timeout=60.0) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with sqlite3.connect(db) as conn:
                n = conn.execute("select coalesce(sum(n), 0) from perf_samples").fetchone()[0]
            if n:
                return n
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    raise AssertionError("no per-query samples reached the store in time")


def test_sigkill_mid_run_leaves_it_aborted_with_samples_kept(tmp_path, digits_models):
    db = tmp_path / "kill.db"
    cmd = [sys.executable, "-m", "infersight", "run", "digits", "--scenario", "single_stream",
           "--set", "min_duration_ms=120000", "--set", "warmup_duration_ms=0", "--db", str(db)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        kept = _wait_for_samples(db)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with sqlite3.connect(db) as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    store = Store(str(db))  # the next start notices the dead process
    try:
        run = store.get_run(1)
        assert run.status == "aborted" and "ended before the run finished" in run.error
        assert len(store.read_perf_samples(1)["completed_ns"]) >= kept
    finally:
        store.close()


class InterruptingBackend(NullBackend):
    """Injected fault: the user presses Ctrl-C after 5,000 batches."""

    name = "interrupting"

    def run_batch(self, inputs):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 5_000:
            raise KeyboardInterrupt
        return super().run_batch(inputs)


class FailingBackend(NullBackend):
    """Injected fault: the backend crashes on its 100th batch."""

    name = "failing"

    def run_batch(self, inputs):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 100:
            raise RuntimeError("device lost")
        return super().run_batch(inputs)


@pytest.mark.parametrize("backend, status, message", [
    (InterruptingBackend, "aborted", "interrupted (Ctrl-C or SIGTERM)"),
    (FailingBackend, "failed", "RuntimeError: device lost"),
])
def test_interrupted_or_failed_run_keeps_its_status(store, digits_models, backend, status, message):
    registry.register("backend", backend.name, backend)
    try:
        req = RunRequest("digits", backend.name, "single_stream",
                         scenario_settings={"min_duration_ms": 60_000, "warmup_duration_ms": 0})
        with pytest.raises((KeyboardInterrupt, RuntimeError)):
            execute_run(prepare_run(req), store)
    finally:
        registry.unregister("backend", backend.name)
    run = store.get_run(1)
    assert run.status == status and message in run.error
    assert run.finished_at is not None


def test_null_backend_run_is_complete_but_fails_accuracy(store, digits_models):
    req = RunRequest("digits", "null", "single_stream", quick=True)
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.status == "complete" and run.validity == "VALID"
    # zeros in, class 0 out: about one digit in ten is right, far below the target
    assert run.accuracy_value < 0.2 and run.accuracy_passed is False


def test_lowered_minimums_are_not_compliant(store, digits_models):
    req = RunRequest("digits", "null", "offline", scenario_settings={"min_duration_ms": 500})
    run = store.get_run(execute_run(prepare_run(req), store))
    assert run.compliant is False and run.quick is False


def test_user_added_system_fields_reach_the_system_card(store, digits_models):
    req = RunRequest("digits", "null", "single_stream", quick=True,
                     system_extra={"price_per_hour_usd": 0.17, "availability": "on-demand"})
    run = store.get_run(execute_run(prepare_run(req), store))
    card = store.get_card("system", run.system_hash)
    assert card["price_per_hour_usd"] == 0.17 and card["availability"] == "on-demand"
