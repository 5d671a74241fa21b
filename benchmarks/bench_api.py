"""Runs query over the REST API: p95 latency through real HTTP against the same query in-process.

Run: .venv/bin/python benchmarks/bench_api.py [--runs 100000] [--requests 300] [--db sqlite|URL]

A fresh SQLite store (or the PostgreSQL database at --db URL, which must be empty) gets `--runs` synthetic
runs (10 tasks x 5 scenarios x 3 backends x 20 systems, two years of start times, 90% complete), written in
bulk straight into the runs table (the benchmark measures reading, not writing). `infersight serve` is started
on 127.0.0.1 in a subprocess with a viewer token, and each query is sent `--requests` times through one
keep-alive httpx client (JSON decoded); the same RunQuery is then run in-process with
runner.store.queries.query_runs as many times. Printed per query: p50 and p95 of each, and the ratio of the
p95s. The goal: p95 under 50 ms through HTTP for a filtered page of 100.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from _api_server import ApiServer  # noqa: E402
from infersight.api.accounts import add_user, create_token  # noqa: E402
from runner.store import Store  # noqa: E402
from runner.store.queries import RunQuery, query_runs  # noqa: E402
from runner.store.schema import CARD_TABLES, runs  # noqa: E402

TASKS = [f"task{i}" for i in range(10)]
SCENARIOS = ["single_stream", "multi_stream", "server", "offline", "interactive"]
BACKENDS = ["onnxruntime", "openvino", "null"]
SYSTEMS = [f"system-{i:02d}" for i in range(20)]
START = datetime(2025, 1, 1, tzinfo=timezone.utc)
QUERIES = {
    "filtered page of 100": {"task": "task3", "scenario": "offline", "backend": "onnxruntime",
                             "status": "complete", "started_after": "2025-07-01T00:00:00Z", "limit": 100},
    "newest 100, no filter": {"limit": 100},
    "one system, by headline": {"system": "system-07", "sort": "headline_value", "order": "desc", "limit": 100},
}


def fill(store: Store, count: int, seed: int = 0) -> None:
    """`count` synthetic complete/failed runs with cards, in bulk (chunks of 10,000 rows, one transaction each)."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    with store._write() as conn:
        for kind, table in CARD_TABLES.items():
            names = SYSTEMS if kind == "system" else [kind]
            conn.execute(table.insert(), [{"hash": f"{kind}-{name}", "name": name, "card": {"name": name},
                                           "created_at": now} for name in names])
    for first in range(0, count, 10_000):
        rows = [_row(rng, i) for i in range(first, min(count, first + 10_000))]
        with store._write() as conn:
            conn.execute(runs.insert(), rows)


def _row(rng: random.Random, i: int) -> dict:
    system = rng.choice(SYSTEMS)
    started = START + timedelta(seconds=rng.uniform(0, 2 * 365 * 86400))
    complete = rng.random() < 0.9
    return dict(uuid=f"{i:08x}-0000-4000-8000-{rng.getrandbits(48):012x}", task_name=rng.choice(TASKS),
                task_version="1.0.0", model_variant="fp32", backend_name=rng.choice(BACKENDS),
                scenario=rng.choice(SCENARIOS), task_hash="task-task", model_hash="model-model",
                backend_hash="backend-backend", system_hash=f"system-{system}",
                status="complete" if complete else "failed", validity="VALID" if complete else None,
                validity_reasons=[], headline_metric="samples_per_second",
                headline_value=rng.lognormvariate(7, 1) if complete else None, headline_units="samples/s",
                summary={"samples_per_second": 1.0}, settings={"scenario": {}}, quick=False, compliant=True,
                provenance="measured", source="bench", hostname=system, pid=None, started_at=started,
                finished_at=started + timedelta(seconds=60))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def time_http(client: httpx.Client, params: dict, n: int) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(n):
        start = time.perf_counter()
        response = client.get("/api/v1/runs", params=params)
        page = response.json()
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
        size = len(page["runs"])
    return times, size


def time_in_process(store: Store, params: dict, n: int) -> list[float]:
    query = RunQuery.model_validate(params)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        query_runs(store, query)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--db", default="sqlite", help="sqlite (a temporary file) or an empty PostgreSQL URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = str(Path(folder) / "bench.db") if args.db == "sqlite" else args.db
        with Store(url) as store:
            start = time.perf_counter()
            fill(store, args.runs)
            print(f"store: {args.runs:,} runs written in {time.perf_counter() - start:.1f} s ({store!r})")
            add_user(store, "bench", "viewer")
            token = create_token(store, "bench")[1]
        server = ApiServer(url, Path(folder) / "server.log")
        try:
            report(server, url, token, args.requests)
        finally:
            server.stop()


def report(server: ApiServer, url: str, token: str, n: int) -> None:
    with server.client(token) as client, Store(url) as store:
        print(f"{'query':28} {'rows':>4}  {'HTTP p50':>9} {'HTTP p95':>9}  {'in-proc p50':>11} {'in-proc p95':>11}  "
              f"{'p95 ratio':>9}")
        for name, params in QUERIES.items():
            time_http(client, params, 5)  # warm: the token's first argon2 check, SQLite's page cache
            http, rows = time_http(client, params, n)
            local = time_in_process(store, params, n)
            h95, l95 = percentile(http, 95) * 1e3, percentile(local, 95) * 1e3
            print(f"{name:28} {rows:4d}  {percentile(http, 50) * 1e3:7.2f}ms {h95:7.2f}ms  "
                  f"{percentile(local, 50) * 1e3:9.2f}ms {l95:9.2f}ms  {h95 / l95:8.2f}x")


if __name__ == "__main__":
    main()
