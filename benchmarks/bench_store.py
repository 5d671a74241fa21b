"""Time writing 1,000,000 per-query samples to a fresh SQLite store against a row-per-query baseline.

Run: .venv/bin/python benchmarks/bench_store.py [--rows N] [--repeat K] [--sustained R]

For each repeat a fresh store is made in a temporary directory, one run is created, and
`Store.append_perf_samples` is timed (columnar chunks compressed as runner/store/_perf.py says, one
transaction).
The baseline, measured in the same process on the same data, is a plain `sqlite3`
`executemany` inserting the same rows one row per query in one transaction, with the same
pragmas (WAL, synchronous=NORMAL); converting the arrays to Python tuples is not timed,
to give the baseline its best case. Medians are printed with their ratio. A fresh store
may leave the WAL checkpoint of the append to a later commit, so a sustained figure
(create, append, finish of `--sustained` runs in one store, checkpoints included) is
printed too.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.store import PERF_COLUMNS, Store  # noqa: E402

CARD_KINDS = ("task", "model", "backend", "system")


def make_columns(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Realistic-looking per-query records: indices and increasing ns timestamps."""
    rng = np.random.default_rng(seed)
    scheduled = np.cumsum(rng.integers(1_000, 2_000_000, rows)).astype(np.int64)
    issued = scheduled + rng.integers(100, 10_000, rows)
    return {"sample_index": rng.integers(0, 50_000, rows), "query_index": np.arange(rows),
            "scheduled_ns": scheduled, "issued_ns": issued,
            "completed_ns": issued + rng.integers(100_000, 5_000_000, rows)}


def time_store(columns: dict[str, np.ndarray], directory: Path) -> tuple[float, float]:
    """Seconds to append the columns to a fresh store, and to read them back."""
    with Store(str(directory / "store.db")) as store:
        for kind in CARD_KINDS:
            store.put_card(kind, {"kind": kind}, f"{kind}-hash", kind)
        run_id = store.create_run(task_name="bench", task_version="1", model_variant="v",
                                  backend_name="null", scenario="offline",
                                  card_hashes={k: f"{k}-hash" for k in CARD_KINDS},
                                  settings={}, quick=True, compliant=False)
        start = time.perf_counter()
        store.append_perf_samples(run_id, columns)
        written = time.perf_counter()
        back = store.read_perf_samples(run_id)
        read = time.perf_counter()
    assert all(np.array_equal(back[name], columns[name]) for name in PERF_COLUMNS)
    return written - start, read - written


def time_sustained(columns: dict[str, np.ndarray], directory: Path, runs: int) -> float:
    """Mean seconds per run to create, append to and finish `runs` runs in one store."""
    with Store(str(directory / "sustained.db")) as store:
        for kind in CARD_KINDS:
            store.put_card(kind, {"kind": kind}, f"{kind}-hash", kind)
        start = time.perf_counter()
        for _ in range(runs):
            run_id = store.create_run(task_name="bench", task_version="1", model_variant="v",
                                      backend_name="null", scenario="offline",
                                      card_hashes={k: f"{k}-hash" for k in CARD_KINDS},
                                      settings={}, quick=True, compliant=False)
            store.append_perf_samples(run_id, columns)
            store.finish_run(run_id, status="complete")
        return (time.perf_counter() - start) / runs


def time_rows(columns: dict[str, np.ndarray], directory: Path) -> float:
    """Seconds for a plain sqlite3 executemany of the same records, one row per query."""
    conn = sqlite3.connect(directory / "rows.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE perf (run_id INTEGER, sample_index INTEGER, query_index INTEGER, "
                 "scheduled_ns INTEGER, issued_ns INTEGER, completed_ns INTEGER)")
    rows = list(zip([1] * len(columns["query_index"]), *(columns[name].tolist() for name in PERF_COLUMNS)))
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO perf VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    """Run both measurements `--repeat` times and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sustained", type=int, default=10)
    args = parser.parse_args()
    columns = make_columns(args.rows)
    writes, reads, baseline = [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            write, read = time_store(columns, Path(tmp))
            writes.append(write)
            reads.append(read)
            baseline.append(time_rows(columns, Path(tmp)))
    with tempfile.TemporaryDirectory() as tmp:
        sustained = time_sustained(columns, Path(tmp), args.sustained)
    store_s, rows_s = statistics.median(writes), statistics.median(baseline)
    print(f"rows per run: {args.rows:,}; repeats: {args.repeat} (medians, fresh SQLite store each time)")
    print(f"Store.append_perf_samples:      {store_s:8.3f} s   (all: {_fmt(writes)})")
    print(f"Store.read_perf_samples:        {statistics.median(reads):8.3f} s   (all: {_fmt(reads)})")
    print(f"create+append+finish, 1 store:  {sustained:8.3f} s   (mean of {args.sustained} runs, "
          f"WAL checkpoints included)")
    print(f"sqlite3 executemany, row/query: {rows_s:8.3f} s   (all: {_fmt(baseline)})")
    print(f"ratio baseline / store:         {rows_s / store_s:8.1f}x")


def _fmt(values: list[float]) -> str:
    """Seconds to three decimals, comma separated."""
    return ", ".join(f"{v:.3f}" for v in values)


if __name__ == "__main__":
    main()
