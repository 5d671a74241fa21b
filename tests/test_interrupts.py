"""Ctrl-C at any point of a server run, as a terminal sends it (SIGINT to the process group): one line, exit
130, and a store that holds no complete run: before the run exists nothing is written; after, the run is
aborted and keeps what was measured."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from runner import interrupts, registry
from runner.backends.null import NullBackend
from runner.loadgen import _issue_loop as issue_loop
from runner.run import RunRequest, execute_run, prepare_run

REPO = Path(__file__).resolve().parents[1]
INFERSIGHT = Path(sys.executable).parent / "infersight"  # the console script a user runs
START_UP = "interrupted during start-up; nothing was written"
LATER = "interrupted: a run that had started is marked aborted, with what was measured kept"
WAIT_S = 240  # for each point to come, on a loaded machine


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def _issued(pid: int) -> int:
    """Queries the run's issuer process has issued so far (from the header of the file it shares), 0 before."""
    for child in Path("/proc").glob("[0-9]*"):
        try:
            if f"PPid:\t{pid}\n" not in (child / "status").read_text():
                continue
            argv = (child / "cmdline").read_bytes().split(b"\0")
            if any(arg.endswith(b"_issue_loop.py") for arg in argv):
                shared = argv[argv.index(next(a for a in argv if a.endswith(b"_issue_loop.py"))) + 1]
                header = np.fromfile(shared.decode(), dtype=np.int64, count=issue_loop.HEADER)
                return int(header[issue_loop.PUB])
        except (OSError, ValueError, IndexError):
            continue
    return 0


def _records(db: Path) -> int:
    """Per-query records stored so far (read-only, never blocking the writer)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as conn:
            return conn.execute("SELECT coalesce(sum(n), 0) FROM perf_samples").fetchone()[0]
    except sqlite3.Error:
        return 0


# the points: (name, whether the point has come, seconds to wait after it, what the store must then hold)
POINTS = {
    "importing the CLI": (lambda pid, db: "_pydantic_core" in _maps(pid), 0.0, "nothing"),
    "store opened, run not created": (lambda pid, db: db.exists(), 0.0, "nothing or aborted"),
    "1.4 s after the start": (lambda pid, db: True, 1.4, "nothing or aborted"),
    "timed run, before its first flush": (lambda pid, db: _issued(pid) > 500, 0.5, "aborted with records"),
    "timed run, records flushed": (lambda pid, db: _records(db) > 0, 0.0, "aborted with records"),
}


def _interrupt_at(point: str, db: Path) -> dict:
    come, after_s, _ = POINTS[point]
    proc = subprocess.Popen([str(INFERSIGHT), "run", "digits", "--backend", "null", "--scenario", "server",
                             "--quick", "--set", "min_duration_ms=60000", "--set", "issuer=process",
                             "--db", str(db)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        started = time.monotonic()
        while not come(proc.pid, db):
            assert proc.poll() is None and time.monotonic() - started < WAIT_S, f"{point}: never came"
            time.sleep(0.005)
        seen = _records(db)
        time.sleep(after_s)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    runs = []
    with sqlite3.connect(db) as conn:  # a store interrupted while it was made has no tables: no runs
        if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0]:
            runs = conn.execute("SELECT status, (SELECT coalesce(sum(n), 0) FROM perf_samples p "
                                "WHERE p.run_id = runs.id) FROM runs").fetchall()
    return {"code": proc.returncode, "err": err, "runs": runs, "seen": seen}


def test_ctrl_c_at_any_point_of_a_server_run_never_leaves_it_complete(digits_models, tmp_path):
    with ThreadPoolExecutor(len(POINTS)) as pool:  # the points run side by side: one start-up's wait in all
        outcomes = dict(zip(POINTS, pool.map(lambda p: _interrupt_at(p[1], tmp_path / f"{p[0]}.db"),
                                             enumerate(POINTS))))
    for point, out in outcomes.items():
        said = [line for line in out["err"].splitlines() if line.strip()]  # progress lines, then the one line
        lines = [line for line in said if "interrupted" in line or "Error" in line or "Traceback" in line]
        assert out["code"] == 130 and lines in ([START_UP], [LATER]) and said[-1] == lines[0], (point, out)
        expect = POINTS[point][2]
        if expect == "nothing":
            assert lines == [START_UP] and out["runs"] == [], (point, out)
        elif expect == "nothing or aborted":
            assert out["runs"] in ([], [("aborted", out["runs"][0][1] if out["runs"] else 0)]), (point, out)
        else:
            assert lines == [LATER] and len(out["runs"]) == 1, (point, out)
            status, records = out["runs"][0]
            assert status == "aborted" and records > 0 and records >= out["seen"], (point, out)


def test_an_interrupt_a_library_swallowed_still_stops_what_the_watch_covers():
    if sys.platform == "win32":
        pytest.skip("POSIX signals")
    with interrupts.watched():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here and raises
        except KeyboardInterrupt:
            pass  # what a bare `except:` in a library does
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    interrupts.check()  # outside every watch: nothing to say
    with interrupts.watched():
        interrupts.check()  # a new watch starts clean


class SwallowingBackend(NullBackend):
    """Injected fault: Ctrl-C lands in a library call that swallows it (a bare `except:`), on batch 50."""

    name = "swallowing"

    def run_batch(self, inputs):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 50:
            try:
                os.kill(os.getpid(), signal.SIGINT)  # a real signal; its handler raises here
                time.sleep(1)
            except KeyboardInterrupt:
                pass
        return super().run_batch(inputs)


def test_a_run_whose_interrupt_a_library_swallowed_ends_aborted_not_complete(store, digits_models):
    registry.register("backend", SwallowingBackend.name, SwallowingBackend)
    try:
        req = RunRequest("digits", SwallowingBackend.name, "single_stream", quick=True,
                         scenario_settings={"min_duration_ms": 300, "warmup_duration_ms": 0})
        with pytest.raises(KeyboardInterrupt):
            execute_run(prepare_run(req), store)
    finally:
        registry.unregister("backend", SwallowingBackend.name)
    run = store.get_run(1)
    assert run.status == "aborted" and "interrupted" in run.error
    assert len(store.read_perf_samples(1)["completed_ns"]) > 0  # what was measured is kept
