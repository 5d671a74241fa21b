"""The reliability suite: signals, concurrency, a full disk, a read-only store and generated bad inputs.

Run: .venv/bin/python benchmarks/reliability.py [--trials N] [--bad-inputs N] [--no-postgres]

- faults: N random SIGKILL / SIGTERM / SIGINT (to the process group, at 1-9 s) during
  `infersight run` (null backend), `infersight import mlperf` (the v4.1 tree) and `infersight sweep`
  (3 cells), on SQLite and PostgreSQL; after each, the store is checked: SQLite's integrity check
  (corrupt), runs still `running` after an open (left running), runs whose per-query log cannot be
  read back or complete runs that fail `validate` (lost samples); commands that did not end within
  90 s after the signal (hung) and tracebacks on stderr are counted too;
- concurrency: 8 processes writing runs at once and 4 `infersight import mlperf` of one tree at once,
  on SQLite and PostgreSQL: lost runs, duplicates and user-visible errors;
- a full disk: a run on an 8 MB tmpfs it fills (skipped, with the reason, where mounting is not
  permitted); a read-only store (file 0444, then folder 0555): runs, show and report run;
- bad inputs: Hypothesis draws cases of every file kind (system extras, sweeps, catalogues, task and
  model cards, --set values) with one fault each (benchmarks/_bad_inputs.py): refused with exit 2 and
  a message naming the place, or counted as traceback, silent acceptance, unplaced message, partial write;
- footprint: bytes per per-query record before (raw int64, 40 bytes) and after (compressed) for
  server-like records, beside the information those records hold (their entropy: no lossless form is
  smaller), and for real null-backend server and offline runs; the time to write 1,000,000 records.

Prints one table of figures; every failure column should be 0. A PostgreSQL server is started for the
run (tests/_postgres.py: `make postgres` installs it) unless --no-postgres.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]

from _bad_inputs import run_cases, tally  # noqa: E402
from _faults import (check_store, concurrent_importers, concurrent_writers, full_disk, read_only_store,  # noqa: E402
                     signal_trials)


def footprint(folder: Path, rows: int = 1_000_000) -> dict[str, Any]:
    """Bytes per per-query record stored (server-like records), the information those records hold (the
    least any lossless form can take), seconds to write `rows` records, and bytes per record of real runs."""
    import sqlite3

    from runner.store import PERF_COLUMNS, Store

    rng = np.random.default_rng(0)
    gap_ns, lateness, latency = 2e5, (1_000, 20_000), (50_000, 150_000)
    scheduled = np.cumsum(rng.exponential(gap_ns, rows)).astype(np.int64)
    issued = scheduled + rng.integers(*lateness, rows)
    records = {"sample_index": rng.integers(0, 1797, rows), "query_index": np.arange(rows), "scheduled_ns": scheduled,
               "issued_ns": issued, "completed_ns": issued + rng.integers(*latency, rows)}
    # entropy in bits: a uniform sample id of 1,797, an exponential gap at 1 ns resolution (log2(e x mean)),
    # a uniform lateness and latency; query indices count up and hold none
    bits = (np.log2(1797) + np.log2(np.e * gap_ns) + np.log2(lateness[1] - lateness[0])
            + np.log2(latency[1] - latency[0]))
    db = folder / "footprint.db"
    with Store(str(db)) as store:
        hashes = {kind: kind[0] * 64 for kind in ("task", "model", "backend", "system")}
        for kind, digest in hashes.items():
            store.put_card(kind, {}, digest, kind)
        run_id = store.create_run(task_name="t", task_version="1", model_variant="fp32", backend_name="null",
                                  scenario="server", card_hashes=hashes, settings={}, quick=True, compliant=False)
        started = time.perf_counter()
        store.append_perf_samples(run_id, records)
        seconds = time.perf_counter() - started
    with sqlite3.connect(db) as conn:
        per_column = {name: conn.execute(f"SELECT sum(length({name})) FROM perf_samples").fetchone()[0] / rows
                      for name in PERF_COLUMNS}
    return {"before": 8.0 * len(PERF_COLUMNS), "after": sum(per_column.values()), "information": bits / 8,
            "write_s": seconds, "offline_run": _run_bytes(folder, "offline"),
            "server_run": _run_bytes(folder, "server", "--set", "target_qps=2000")}


def _run_bytes(folder: Path, scenario: str, *args: str) -> float:
    """Bytes per per-query record of a real `--quick` run on the null backend."""
    import sqlite3

    from _faults import infersight

    db = folder / f"{scenario}.db"
    infersight("run", "digits", "--backend", "null", "--scenario", scenario, "--quick", *args, "--db", str(db))
    with sqlite3.connect(db) as conn:
        stored, n = conn.execute("SELECT sum(length(sample_index) + length(query_index) + length(scheduled_ns) + "
                                 "length(issued_ns) + length(completed_ns)), sum(n) FROM perf_samples").fetchone()
    return stored / n


class Postgres:
    """A throwaway PostgreSQL server (tests/_postgres.py) with a fresh database per use."""

    def __init__(self) -> None:
        from _postgres import PostgresServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL binaries are not installed (make postgres)")
        self.server, self.count = PostgresServer(bindir), 0
        self.server.start()

    def fresh(self) -> str:
        from sqlalchemy import create_engine

        self.count += 1
        name = f"reliability_{self.count}"
        engine = create_engine(self.server.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.server.url(name)

    def stop(self) -> None:
        self.server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30, help="signal trials per engine (default 30)")
    parser.add_argument("--bad-inputs", type=int, default=1000, help="generated bad inputs (default 1000)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="infersight-reliability-") as tmp:
        folder = Path(tmp)
        engines = {"sqlite": lambda name: str(folder / f"{name}.db")}
        pg = None
        if not args.no_postgres:
            try:
                pg = Postgres()
                engines["postgresql"] = lambda name: pg.fresh()
            except RuntimeError as exc:
                rows.append(("postgresql", "skipped", str(exc)))
        try:
            for engine, url_for in engines.items():
                _section(rows, engine, url_for, folder, args.trials)
        finally:
            if pg is not None:
                pg.stop()
        disk = full_disk(folder)
        rows.append(("full disk (8 MB tmpfs)", "sqlite", "skipped: " + disk["skipped"] if "skipped" in disk else
                     f"run exit {disk['exit']}, clear message {disk['clear']}, status once space returned "
                     f"{disk['status']} (reason kept {disk['reason']}), reads on the full disk ok {disk['reads_ok']}, "
                     f"tracebacks {disk['traceback']}"))
        ro = read_only_store(folder)
        rows.append(("read-only store", "sqlite", f"commands {ro['commands']}, failures {ro['failures']}"))
        started = time.perf_counter()
        (folder / "bad").mkdir()
        bad = tally(run_cases(folder / "bad", args.bad_inputs))
        rows.append(("bad inputs", "sqlite", f"cases {bad['cases']}, refused {bad['refused']}, tracebacks "
                     f"{bad['traceback']}, silent acceptances {bad['accepted']}, unplaced messages "
                     f"{bad['no_place']}, partial writes {bad['partial_write']} "
                     f"({time.perf_counter() - started:.0f} s)"))
        fp = footprint(folder)
        rows.append(("footprint", "sqlite", f"bytes/record {fp['before']:.0f} -> {fp['after']:.2f} server-like "
                     f"(the information they hold: {fp['information']:.2f}), {fp['server_run']:.2f} in a null "
                     f"server run, {fp['offline_run']:.2f} in a null offline run; write 1M records "
                     f"{fp['write_s']:.2f} s"))
    _print(rows)
    return 0


def _section(rows: list, engine: str, url_for, folder: Path, trials: int) -> None:
    started = time.perf_counter()
    url = url_for("faults")
    faults = signal_trials(url, folder, trials)
    final = check_store(url)
    corrupt = faults["corrupt"] + final["corrupt"]
    rows.append(("faults (signals)", engine, f"trials {faults['trials']}, corrupt stores {corrupt}, "
                 f"left running {faults['running']}, lost samples {faults['lost']}, hung {faults['hung']}, "
                 f"tracebacks {faults['tracebacks']} ({time.perf_counter() - started:.0f} s)"))
    writers = concurrent_writers(url_for("writers"))
    rows.append(("8 concurrent writers", engine, f"runs {writers['runs']}, lost {writers['lost']}, "
                 f"errors {writers['errors']}"))
    importers = concurrent_importers(url_for("importers"))
    rows.append(("4 concurrent importers", engine, f"results {importers['results']}, lost {importers['lost']}, "
                 f"duplicates {importers['duplicates']}, errors {importers['errors']}"))


def _print(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'check':<{width}}  {'store':<10}  figures")
    for check, engine, figures in rows:
        print(f"{check:<{width}}  {engine:<10}  {figures}")


if __name__ == "__main__":
    sys.exit(main())
