"""The comparison, decision and trend reports, the reproducible badge, the report commands and the
app's Reports page: content against independently computed figures, escaping, and a real browser.

The fixture store holds one real quick digits run (on a system named with a script tag, labelled
with an image tag) and synthetic runs with its cards: three configurations of three replicas each
(per-query records drawn from one lognormal sample, scaled per run, so every figure is known) and
a history of 112 runs over seven quarters on two more systems, with a known step and a known trend.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import update

from _browser import chart_specs, open_offline
from conftest import cli
from runner.run import RunRequest, execute_run, prepare_run
from runner.store import Store
from runner.store.schema import runs as runs_table

EVIL = "<script>alert(1)</script>"
EVIL_IMG = '"><img src=x onerror=alert(2)>'
MLPERF = Path(__file__).resolve().parents[2] / "shared/data/mlperf/v4.1"
QUARTERS = ["2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1", "2026Q2", "2026Q3"]
SYSTEMS = {"steady": f"Rack {EVIL_IMG}", "other": "Plain box"}
BASE_LATENCY = np.random.default_rng(11).lognormal(np.log(0.2), 0.25, 1500)  # ms, one sample for every run
# intra_op_threads and run-to-run factors of the synthetic configurations: against A, B is 20% faster,
# C the same within 0.1%, D spread by -3%..+4% (not reproducible, and inconclusive against A)
CONFIGS = {"A": (1, [1.00, 1.005, 0.995]), "B": (3, [0.80, 0.81, 0.79]), "C": (4, [1.001, 0.999, 1.000]),
           "D": (5, [1.00, 1.04, 0.97])}


def _digest(card: dict) -> str:
    return hashlib.sha256(json.dumps(card, sort_keys=True, default=str).encode()).hexdigest()


def clone_cards(store: Store, run: dict, system_name: str | None = None, backend: str | None = None) -> dict:
    """The four card hashes of `run`, with the system renamed and/or the backend card changed (new hashes)."""
    hashes = {}
    for kind in ("task", "model", "backend", "system"):
        card = store.get_card(kind, run[f"{kind}_hash"])
        if kind == "system" and system_name:
            card = {**card, "system_name": system_name}
        if kind == "backend" and backend:
            card = {**card, "backend": backend}
        hashes[kind] = store.put_card(kind, card, _digest(card), kind)
    return hashes


def synthetic_run(store: Store, base: dict, hashes: dict, *, started: str, headline: float,
                  latency_ms: np.ndarray | None = None, threads: int | None = None, backend: str | None = None,
                  label: str | None = None) -> int:
    """A complete, VALID run with `base`'s settings (intra_op_threads changed to make another configuration),
    headline `headline` ms (p90), started at `started`, with per-query records when latencies are given."""
    settings = json.loads(json.dumps(base["settings"]))
    if threads is not None:
        settings["backend"]["intra_op_threads"] = threads
    run_id = store.create_run(task_name="digits", task_version=base["task_version"], model_variant="fp32",
                              backend_name=backend or "onnxruntime", scenario="single_stream", card_hashes=hashes,
                              settings=settings, quick=True, compliant=False, label=label)
    summary = {k: v for k, v in base["summary"].items() if k != "ci"}
    if latency_ms is not None:
        latency = np.round(latency_ms * 1e6).astype(np.int64)
        scheduled = np.cumsum(latency) - latency
        store.append_perf_samples(run_id, {"sample_index": np.arange(len(latency)) % 360,
                                           "query_index": np.arange(len(latency)), "scheduled_ns": scheduled,
                                           "issued_ns": scheduled + 1000, "completed_ns": scheduled + latency})
        summary.update(latency_p99_ms=float(np.quantile(latency_ms, 0.99)),
                       samples_per_second=len(latency) / (latency.sum() / 1e9))
    summary.update(latency_p90_ms=headline)
    store.finish_run(run_id, status="complete", validity="VALID", headline_metric="latency_p90_ms",
                     headline_value=headline, headline_units="ms", summary=summary,
                     accuracy_metric=base["accuracy_metric"], accuracy_value=base["accuracy_value"],
                     accuracy_target=base["accuracy_target"], accuracy_passed=True)
    with store.engine.begin() as conn:
        conn.execute(update(runs_table).where(runs_table.c.id == run_id).values(started_at=pd.Timestamp(started)))
    return run_id


def history_value(series: str, quarter: int, k: int) -> float:
    """The headline (ms) of run k of a quarter of a history series: 'steady' steps down 20% from
    2026Q2 (a change point), 'other' grows 5% a quarter; +-1% noise that is known, not drawn."""
    noise = 1 + 0.01 * (-1.5 + k)
    if series == "steady":
        return (1.0 if quarter < 5 else 0.8) * noise
    return 2.0 * 1.05 ** quarter * noise


@pytest.fixture(scope="module")
def more_db(tmp_path_factory, digits_models) -> dict:
    """The fixture store (see the module doc) and the ids in it."""
    db = tmp_path_factory.mktemp("reports_more") / "more.db"
    with Store(str(db)) as store:
        real = execute_run(prepare_run(RunRequest("digits", scenario="single_stream", quick=True, label=EVIL_IMG,
                                                  system_extra={"system_name": EVIL})), store)
        base = store.get_run(real)
        with store.engine.begin() as conn:  # a fixed date, so no run falls in a quarter by the calendar
            conn.execute(update(runs_table).where(runs_table.c.id == real)
                         .values(started_at=pd.Timestamp("2026-12-01T00:00Z")))
        p90 = float(np.quantile(BASE_LATENCY, 0.9))
        configs = {}
        for name, (threads, factors) in CONFIGS.items():
            configs[name] = [synthetic_run(store, base, clone_cards(store, base), started=f"2026-08-0{i + 1}T12:00Z",
                                           headline=p90 * f, latency_ms=BASE_LATENCY * f, threads=threads,
                                           label=f"{name}{i} {EVIL}") for i, f in enumerate(factors)]
        history = {}
        for series, system in SYSTEMS.items():
            for backend in ("onnxruntime", "openvino"):
                hashes = clone_cards(store, base, system, backend)
                for q, quarter in enumerate(QUARTERS):
                    start = pd.Period(quarter, "Q").start_time
                    history[(series, backend, quarter)] = [
                        synthetic_run(store, base, hashes, started=str(start + pd.Timedelta(days=7 + 14 * k)) + "Z",
                                      headline=history_value(series, q, k) * (1 if backend == "onnxruntime" else 1.5),
                                      backend=backend) for k in range(4)]
    return {"db": db, "real": real, "configs": configs, "history": history, "p90": p90}
