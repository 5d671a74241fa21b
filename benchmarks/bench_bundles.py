"""Time exporting and importing a run bundle of a run with ~100,000 per-query records.

Run: .venv/bin/python benchmarks/bench_bundles.py [--queries N] [--repeat K]

A real run is measured first: digits on the null backend, single_stream, N queries (one per-query record
each, distinct timestamps). Then, per bundle kind (folder, zip, tar.gz) and repeat, `export_bundle` writes
it from that store and `import_bundle` reads, checks and stores it into a fresh store; a second import
(which stores nothing) is timed too. The baseline, in the same process, is the bare store copy the import
ends in: `read_perf_samples` from the first store and `append_perf_samples` into a fresh one. Medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runner.bundles import export_bundle, import_bundle  # noqa: E402
from runner.run import RunRequest, execute_run, prepare_run  # noqa: E402
from runner.store import Store  # noqa: E402

CARD_KINDS = ("task", "model", "backend", "system")


def measure(store: Store, queries: int) -> int:
    settings = {"min_duration_ms": 1, "min_query_count": queries, "warmup_duration_ms": 0}
    return execute_run(prepare_run(RunRequest("digits", "null", "single_stream", scenario_settings=settings)), store)


def bare_copy(store: Store, run_id: int, directory: Path) -> float:
    """Seconds to read a run's records and append them to a fresh store (its cards and run row first)."""
    run = store.get_run(run_id)
    with Store(str(directory / "bare.db")) as other:
        for kind in CARD_KINDS:
            other.put_card(kind, store.get_card(kind, run.card_hashes[kind]), run.card_hashes[kind], kind)
        new = other.create_run(task_name=run.task_name, task_version=run.task_version,
                               model_variant=run.model_variant, backend_name=run.backend_name,
                               scenario=run.scenario, card_hashes={k: run.card_hashes[k] for k in CARD_KINDS},
                               settings=run.settings, quick=run.quick, compliant=run.compliant)
        start = time.perf_counter()
        other.append_perf_samples(new, store.read_perf_samples(run_id))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with Store(str(root / "source.db")) as store:
            run_id = measure(store, args.queries)
            records = len(store.read_perf_samples(run_id)["completed_ns"])
            print(f"run {run_id}: {records:,} per-query records (digits, null backend, single_stream)")
            bare = statistics.median(bare_copy(store, run_id, Path(tempfile.mkdtemp(dir=tmp)))
                                     for _ in range(args.repeat))
            print(f"baseline: read + append the records into a fresh store  {bare * 1e3:8.1f} ms")
            for kind, name in (("folder", "bundle"), ("zip", "bundle.zip"), ("tar.gz", "bundle.tar.gz")):
                times = [_round_trip(store, run_id, Path(tempfile.mkdtemp(dir=tmp)), name) for _ in range(args.repeat)]
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


if __name__ == "__main__":
    main()
