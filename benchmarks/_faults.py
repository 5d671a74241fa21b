"""Faults for the reliability suite: signals during real commands, concurrent writers and importers,
a full disk and a read-only store. Each function returns plain figures (counts), all of which should be 0
in the failure columns."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from runner.store import RunRecord

REPO = Path(__file__).resolve().parents[1]
MLPERF_TREE = REPO.parent / "shared" / "data" / "mlperf" / "v4.1"
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
SWEEP = """name: reliability
tasks: [digits]
backends: [{name: "null"}]
scenarios:
  - name: single_stream
    settings: {min_duration_ms: [300, 400, 500]}
quick: true
"""


def infersight(*args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess (from this source tree)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "infersight", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd or REPO)


def command(kind: str, url: str, folder: Path) -> list[str]:
    """The command a signal interrupts: a run, an MLPerf import or a sweep."""
    if kind == "run":
        return ["run", "digits", "--backend", "null", "--scenario", "single_stream", "--quick", "--db", url]
    if kind == "import":
        return ["import", "mlperf", str(MLPERF_TREE), "--db", url]
    sweep = folder / "reliability-sweep.yaml"
    sweep.write_text(SWEEP)
    return ["sweep", str(sweep), "--db", url]


def signal_trial(kind: str, sig: str, delay_s: float, url: str, folder: Path) -> dict[str, Any]:
    """Start `kind`, send `sig` to its process group after delay_s, wait for it to end; then check the store."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "infersight", *command(kind, url, folder)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(delay_s)
    try:
        os.killpg(proc.pid, SIGNALS[sig])
    except ProcessLookupError:
        pass
    hung = 0
    try:
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        hung = 1
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    _wait_group(proc.pid)
    figures = check_store(url)
    return {**figures, "hung": hung, "tracebacks": int("Traceback" in (err or ""))}


def _wait_group(pgid: int, timeout_s: float = 60) -> None:
    """Wait until every process of the group (sweep cells included) has ended; kill what is left after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.1)


def check_store(url: str) -> dict[str, int]:
    """corrupt: the store fails SQLite's integrity check or cannot be opened; running: runs still 'running'
    after an open (which marks dead runs aborted); lost: runs whose samples cannot be read back, or complete
    runs that fail the completeness check."""
    from runner.errors import InfersightError
    from runner.store import Store
    from runner.validate import check_run

    if not url.startswith("postgresql") and Path(url).exists():
        with contextlib.closing(sqlite3.connect(url)) as conn:
            if conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]:
                return {"corrupt": 1, "running": 0, "lost": 0}
    try:
        with Store(url) as store:
            runs = store.list_runs(limit=None)
            lost = 0
            for run in runs:
                try:
                    store.read_perf_samples(run.id)
                    if run.status == "complete" and check_run(store, run.id):
                        lost += 1
                except InfersightError:
                    lost += 1
            return {"corrupt": 0, "running": sum(r.status == "running" for r in runs), "lost": lost}
    except InfersightError:
        return {"corrupt": 1, "running": 0, "lost": 0}


def signal_trials(url: str, folder: Path, trials: int, seed: int = 0) -> dict[str, int]:
    """`trials` random signals (kind of command x signal x delay) into one store; summed figures."""
    rng = random.Random(seed)
    total = {"trials": 0, "corrupt": 0, "running": 0, "lost": 0, "hung": 0, "tracebacks": 0}
    for i in range(trials):
        kind, sig = ("run", "import", "sweep")[i % 3], rng.choice(list(SIGNALS))
        result = signal_trial(kind, sig, rng.uniform(1.0, 9.0), url, folder)
        total["trials"] += 1
        for key in ("corrupt", "running", "lost", "hung", "tracebacks"):
            total[key] += result[key]
    return total


# -- concurrency --------------------------------------------------------------------------------

KINDS = ("task", "model", "backend", "system")
HASHES = {kind: kind[0] * 64 for kind in KINDS}


def _writer(url: str, worker: int, runs: int, records: int, queue) -> None:
    """One writer process: `runs` runs, each with two appends of `records` per-query records."""
    from runner.store import Store

    errors = []
    try:
        store = Store(url)
        for kind in KINDS:
            store.put_card(kind, {"kind": kind}, HASHES[kind], kind)
        for _ in range(runs):
            run_id = store.create_run(task_name="digits", task_version="1", model_variant="fp32",
                                      backend_name="null", scenario="offline", card_hashes=HASHES,
                                      settings={"worker": worker}, quick=True, compliant=False, label=f"w{worker}")
            for part in range(2):
                base = np.arange(records, dtype=np.int64) + part * records
                store.append_perf_samples(run_id, {"sample_index": base % 1797, "query_index": base,
                                                   "scheduled_ns": base * 1000, "issued_ns": base * 1000 + 5,
                                                   "completed_ns": base * 1000 + 50})
            store.finish_run(run_id, status="complete")
        store.close()
    except Exception as exc:  # noqa: BLE001 - counted as a user-visible error
        errors.append(f"{type(exc).__name__}: {exc}")
    queue.put(errors)


def concurrent_writers(url: str, writers: int = 8, runs: int = 3, records: int = 20_000) -> dict[str, int]:
    """`writers` processes writing runs at once into one store: lost runs and user-visible errors."""
    from runner.store import Store

    Store(url).close()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, w, runs, records, queue)) for w in range(writers)]
    for p in procs:
        p.start()
    errors = sum((queue.get(timeout=600) for _ in procs), [])
    for p in procs:
        p.join()
    with Store(url) as store:
        mine = [r for r in store.list_runs(limit=None) if (r.label or "").startswith("w")]
        kept = sum(run.status == "complete"
                   and len(store.read_perf_samples(run.id)["completed_ns"]) == 2 * records for run in mine)
    return {"writers": writers, "runs": writers * runs, "lost": writers * runs - kept, "errors": len(errors)}


def concurrent_importers(url: str, importers: int = 4) -> dict[str, int]:
    """`importers` `infersight import mlperf` of one tree at once into one store: errors, lost and duplicates."""
    from runner.store import Store

    Store(url).close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-m", "infersight", "import", "mlperf", str(MLPERF_TREE), "--db", url],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(importers)]
    errors = sum(p.wait(timeout=900) != 0 for p in procs)
    for p in procs:
        p.stderr.close()
    with Store(url) as store:
        rows = store.list_runs(source="mlperf", limit=None)
    paths = [(r.imported["round"], r.imported["source_path"]) for r in rows]
    expected = expected_import_count()
    return {"importers": importers, "results": expected, "lost": max(expected - len(set(paths)), 0),
            "duplicates": len(paths) - len(set(paths)), "errors": errors}


_EXPECTED: list[int] = []


def expected_import_count() -> int:
    """How many results one import of the tree stores (a fresh SQLite store, once)."""
    if not _EXPECTED:
        import tempfile

        from runner.store import Store

        with tempfile.TemporaryDirectory() as folder:
            url = str(Path(folder) / "one.db")
            infersight("import", "mlperf", str(MLPERF_TREE), "--db", url, timeout=900)
            with Store(url) as store:
                _EXPECTED.append(len(store.list_runs(source="mlperf", limit=None)))
    return _EXPECTED[0]


# -- full disk and read-only store --------------------------------------------------------------

def full_disk(folder: Path, size: str = "8m") -> dict[str, Any]:
    """A run on a small tmpfs that it fills; once the disk is full a spare file is deleted (space returns):
    the run must end with a clear message, marked failed with the reason, and `runs`/`show` must work on the
    full disk. Returns {"skipped": reason} where mounting is not permitted."""
    mount = folder / "full-disk"
    mount.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        return {"skipped": f"cannot mount a tmpfs here ({done.stderr.strip() or 'not permitted'})"}
    try:
        url = str(mount / "s.db")
        infersight("runs", "--db", url)  # an empty store
        (mount / "spare").write_bytes(b"\0" * 1_000_000)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "infersight", "run", "digits", "--backend", "null",
                                 "--scenario", "offline", "--quick", "--db", url], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        reads_ok = _when_full(mount, url, proc)
        (mount / "spare").unlink()
        _, err = proc.communicate(timeout=120)
        run = _first_run(url)
        return {"exit": proc.returncode, "clear": int("disk is full" in err), "traceback": int("Traceback" in err),
                "reads_ok": reads_ok, "status": run.status if run else None,
                "reason": int("disk is full" in ((run.error if run else None) or ""))}
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _when_full(mount: Path, url: str, proc: subprocess.Popen) -> int:
    """Wait until the disk is full (or the run ended); then whether `runs` and `show 1` work."""
    while proc.poll() is None and shutil.disk_usage(mount).free > 64 * 1024:
        time.sleep(0.05)
    listed, shown = infersight("runs", "--db", url), infersight("show", "1", "--db", url)
    return int(listed.returncode == 0 and shown.returncode == 0 and "Traceback" not in listed.stderr + shown.stderr)


def _first_run(url: str) -> RunRecord | None:
    from runner.store import Store

    with Store(url) as store:
        runs = store.list_runs(limit=None)
        return runs[-1] if runs else None


def read_only_store(folder: Path) -> dict[str, int]:
    """A store with a run, made read-only (file 0444, then folder 0555): listed, shown and reported."""
    ro = folder / "read-only"
    ro.mkdir(exist_ok=True)
    url = str(ro / "s.db")
    infersight("run", "digits", "--backend", "null", "--scenario", "single_stream", "--quick", "--db", url)
    failures = 0
    for target, mode in ((ro / "s.db", 0o444), (ro, 0o555)):
        target.chmod(mode)
        try:
            for args in (["runs"], ["show", "1"], ["report", "run", "1", "--out", str(folder / "ro-report.html")]):
                failures += infersight(*args, "--db", url).returncode != 0
        finally:
            target.chmod(0o755 if target.is_dir() else 0o644)
    shutil.rmtree(ro, ignore_errors=True)
    return {"commands": 6, "failures": failures}
