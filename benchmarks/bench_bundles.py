"""Time run bundles: export and import of one large run, and submission to a team server over real HTTP.

Run: .venv/bin/python benchmarks/bench_bundles.py [--queries N] [--repeat K] [--runs R] [--run-queries Q]
     [--parts all|1|2]

Part 1 (--queries, default 100,000): a real run is measured (digits on the null backend, single_stream,
N queries). Per bundle kind (folder, zip, tar.gz) and repeat, `export_bundle` writes it and `import_bundle`
reads, checks and stores it into a fresh store; a second import (which stores nothing) is timed too. The
baseline, in the same process, is the bare store copy the import ends in: `read_perf_samples` from the first
store and `append_perf_samples` into a fresh one. Medians.

Part 2 (--runs, default 1,000 runs of --run-queries, default 10,000 queries): one real run of Q queries is
measured, and R - 1 copies of it (new uuids, the per-query timestamps shifted) are written to the same
store; each run is exported as its own zip bundle. Then every bundle is submitted (POST /api/v1/bundles,
one keep-alive httpx client, a token with the submitter role) to the API app on uvicorn on 127.0.0.1 over
its own fresh SQLite store, and, in the same process, imported locally with `import_bundle` from its zip
file into another fresh store. Reported: bundles per second each way and their ratio; a second submission
of every bundle (the server finds each by its sha256 and stores nothing) is timed too.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from infersight.client import BUNDLES_PATH  # noqa: E402
from runner.bundles import bundle_zip, export_bundle, import_bundle  # noqa: E402
from runner.run import RunRequest, execute_run, prepare_run  # noqa: E402
from runner.store import Store  # noqa: E402

CARD_KINDS = ("task", "model", "backend", "system")


def measure(store: Store, queries: int) -> int:
    settings = {"min_duration_ms": 1, "min_query_count": queries, "warmup_duration_ms": 0}
    return execute_run(prepare_run(RunRequest("digits", "null", "single_stream", scenario_settings=settings)), store)


def bare_copy(store: Store, run_id: int, directory: Path) -> float:
    """Seconds to read a run's records and append them to a fresh store (its cards and run row first)."""
    with Store(str(directory / "bare.db")) as other:
        new = copy_run(store, run_id, other, shift_ns=0, records=False)
        start = time.perf_counter()
        other.append_perf_samples(new, store.read_perf_samples(run_id))
        return time.perf_counter() - start


def copy_run(store: Store, run_id: int, other: Store, *, shift_ns: int, records: bool = True) -> int:
    """A copy of the run in `other` under a new uuid: cards, settings, result, and (with `records`) its
    per-query records shifted by shift_ns and its accuracy log."""
    run = store.get_run(run_id)
    hashes = {kind: run.card_hashes[kind] for kind in CARD_KINDS}
    for kind, digest in hashes.items():
        other.put_card(kind, store.get_card(kind, digest), digest, kind)
    new = other.create_run(task_name=run.task_name, task_version=run.task_version,
                           model_variant=run.model_variant, backend_name=run.backend_name,
                           scenario=run.scenario, card_hashes=hashes, settings=run.settings,
                           quick=run.quick, compliant=run.compliant)
    if records:
        columns = store.read_perf_samples(run_id)
        shifted = {name: arr + shift_ns if name.endswith("_ns") else arr for name, arr in columns.items()}
        other.append_perf_samples(new, shifted)
        samples = store.read_accuracy_samples(run_id)
        other.put_accuracy_samples(new, [s["sample_index"] for s in samples], [s["prediction"] for s in samples],
                                   [s["reference"] for s in samples], [s["correct"] for s in samples])
        result = {key: getattr(run, key) for key in ("validity", "headline_metric", "headline_value", "headline_units",
                                            "summary", "accuracy_metric", "accuracy_value", "accuracy_target",
                                            "accuracy_passed")}
        other.finish_run(new, status=run.status, validity_reasons=run.validity_reasons or (), **result)
    return new


def part_one(root: Path, queries: int, repeat: int) -> None:
    with Store(str(root / "source.db")) as store:
        run_id = measure(store, queries)
        records = len(store.read_perf_samples(run_id)["completed_ns"])
        print(f"run {run_id}: {records:,} per-query records (digits, null backend, single_stream)")
        bare = statistics.median(bare_copy(store, run_id, Path(tempfile.mkdtemp(dir=root))) for _ in range(repeat))
        print(f"baseline: read + append the records into a fresh store  {bare * 1e3:8.1f} ms")
        for kind, name in (("folder", "bundle"), ("zip", "bundle.zip"), ("tar.gz", "bundle.tar.gz")):
            times = [_round_trip(store, run_id, Path(tempfile.mkdtemp(dir=root)), name) for _ in range(repeat)]
            export, imported, again, size = (statistics.median(t[i] for t in times) for i in range(4))
            print(f"{kind:>7}: export {export * 1e3:7.1f} ms, import {imported * 1e3:7.1f} ms "
                  f"({imported / bare:4.1f}x the bare copy), import again (stores nothing) {again * 1e3:6.1f} ms, "
                  f"{size / 1e6:5.2f} MB")


def _round_trip(store: Store, run_id: int, directory: Path, name: str) -> tuple[float, float, float, int]:
    out = directory / name
    start = time.perf_counter()
    export_bundle(store, [run_id], out)
    exported = time.perf_counter()
    with Store(str(directory / "target.db")) as target:
        begin = time.perf_counter()
        import_bundle(target, out)
        imported = time.perf_counter()
        import_bundle(target, out)
        again = time.perf_counter()
    size = out.stat().st_size if out.is_file() else sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return exported - start, imported - begin, again - imported, size


def make_bundles(root: Path, runs: int, queries: int) -> list[Path]:
    """`runs` zip bundles of one run of `queries` queries each (one measured, the others copies of it)."""
    folder = root / "bundles"
    folder.mkdir()
    with Store(str(root / "many.db")) as store:
        first = measure(store, queries)
        duration = int(store.read_perf_samples(first)["completed_ns"].max()) + 1
        ids = [first] + [copy_run(store, first, store, shift_ns=i * duration) for i in range(1, runs)]
        records = len(store.read_perf_samples(first)["completed_ns"])
        paths = []
        for run_id in ids:
            path = folder / f"{run_id}.zip"
            path.write_bytes(bundle_zip(store, [run_id])[0])
            paths.append(path)
    size = sum(p.stat().st_size for p in paths)
    print(f"{runs:,} bundles of one run of {records:,} per-query records each, {size / 1e6:.1f} MB in all")
    return paths


def part_two(root: Path, runs: int, queries: int) -> None:
    paths = make_bundles(root, runs, queries)
    with Store(str(root / "local.db")) as local:
        start = time.perf_counter()
        for path in paths:
            import_bundle(local, path)
        local_s = time.perf_counter() - start
    with serve(root / "server.db") as (url, token), \
            httpx.Client(base_url=url, timeout=300, headers={"Authorization": f"Bearer {token}"}) as client:
        submit_s = _submit_all(client, paths, expect=201)
        again_s = _submit_all(client, paths, expect=200)
    local_rate, submit_rate = runs / local_s, runs / submit_s
    print(f"local `import bundle`: {local_rate:7.1f} bundles/s ({local_s:6.1f} s for {runs:,})")
    print(f"submission over HTTP : {submit_rate:7.1f} bundles/s ({submit_s:6.1f} s), "
          f"{submit_rate / local_rate:.2f}x the local import")
    print(f"submitting again     : {runs / again_s:7.1f} bundles/s (each found by its sha256, nothing stored)")


@contextmanager
def serve(db: Path) -> Iterator[tuple[str, str]]:
    """The API app (uvicorn) on a free loopback port over a fresh store at `db`; (its URL, a submitter's token)."""
    from infersight.api.accounts import add_user, create_token

    with Store(str(db)) as store:
        add_user(store, "bench", "submitter")
        token = create_token(store, "bench")[1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "INFERSIGHT_DB": str(db), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "infersight.api:create_app", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env, cwd=REPO)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                httpx.get(f"{url}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, token
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _submit_all(client, paths: list[Path], expect: int) -> float:
    start = time.perf_counter()
    for path in paths:
        response = client.post(BUNDLES_PATH, content=path.read_bytes(), headers={"Content-Type": "application/zip"})
        if response.status_code != expect:
            raise SystemExit(f"{path.name}: {response.status_code} {response.text[:300]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=100_000, help="part 1: queries of the large run")
    parser.add_argument("--repeat", type=int, default=3, help="part 1: repeats (medians reported)")
    parser.add_argument("--runs", type=int, default=1_000, help="part 2: bundles submitted (one run each)")
    parser.add_argument("--run-queries", type=int, default=10_000, help="part 2: queries per run")
    parser.add_argument("--parts", choices=("all", "1", "2"), default="all", help="which parts to run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.parts in ("all", "1"):
            part_one(root, args.queries, args.repeat)
        if args.parts in ("all", "2"):
            part_two(root, args.runs, args.run_queries)


if __name__ == "__main__":
    main()
