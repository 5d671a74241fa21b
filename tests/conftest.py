"""Shared fixtures: a real SQLite store under tmp_path, the built digits and charlm models, the repo root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest_plugins = ["_postgres"]

REPO = Path(__file__).resolve().parent.parent
INFERSIGHT = [sys.executable, "-m", "infersight"]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.db"


@pytest.fixture
def store(db_path: Path):
    from runner.store import Store

    s = Store(str(db_path))
    yield s
    s.close()


def _built_models(name: str) -> Path:
    """Task `name`'s models folder, its fp32 and int8 models built now if `make` has not built them already."""
    from runner import registry
    from runner.pins import build_task

    task = registry.get("task", name)()
    try:
        task.model_card("fp32")
        task.model_card("int8")
    except Exception:  # noqa: BLE001 - not built (or stale): build now; a pinned file is never replaced
        build_task(task, progress=False)
    return task.models_dir


@pytest.fixture(scope="session")
def digits_models() -> Path:
    """The digits models, built once if `make` has not built them already."""
    return _built_models("digits")


@pytest.fixture(scope="session")
def charlm_models() -> Path:
    """The charlm models, built once if `make` has not built them already."""
    return _built_models("charlm")


def cli(*args: str, db: Path | None = None, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess."""
    cmd = [*INFERSIGHT, *args] + (["--db", str(db)] if db else [])
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def tiny_model_card():
    """A model card for a 4-input, 3-class model (for the null backend: no file is read)."""
    from runner.cards import ModelCard

    return ModelCard.model_validate({
        "task": "tiny", "task_version": "1.0.0", "name": "tiny", "variant": "fp32", "file": "tiny.onnx",
        "sha256": "0" * 64, "size_bytes": 1, "precision": "fp32", "opset": 17, "operators": ["Gemm"],
        "build": {"script": "none", "seed": 0},
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 3]}],
        "reference_quality": {"metric": "top1_accuracy", "value": 1.0, "samples": 10, "fp32_reference": 1.0}})


@pytest.fixture
def null_sut(tiny_model_card):
    """A system under test: the null backend over 100 random 4-float samples."""
    from runner.backends.null import NullBackend
    from runner.sut import BackendSUT
    from runner.task import ArraySampleLibrary

    backend = NullBackend()
    backend.prepare(tiny_model_card, Path("unused"))
    qsl = ArraySampleLibrary({"x": np.random.default_rng(0).random((100, 4), dtype=np.float32)}, 50)
    return BackendSUT(backend, qsl, batch_size=16), qsl


# Quarters the app fixture's fp32 offline runs are dated in (a mocked clock), so the Trends page has a history.
APP_QUARTERS = ("2025-02-14", "2025-05-15", "2025-08-14", "2025-11-13")


@pytest.fixture(scope="session")
def app_db(tmp_path_factory, digits_models) -> dict:
    """The app's fixture store: the published MLPerf v4.1 results (../shared) plus quick digits runs:
    fp32 offline once in each of APP_QUARTERS (the store's clock mocked), int8 offline twice and fp32
    single_stream once (now). Returns {"db": path, "fp32": [ids], "int8": [ids], "single_stream": id}."""
    from datetime import datetime, timezone

    from runner.importers import import_tree
    from runner.run import RunRequest, execute_run, prepare_run
    from runner.store import Store, store as store_module

    mlperf = REPO.parent / "shared/data/mlperf/v4.1"
    assert (mlperf / "summary_results.json").is_file(), f"MLPerf v4.1 results not found at {mlperf}"
    db = tmp_path_factory.mktemp("app") / "app.db"
    ids: dict = {"db": db, "fp32": [], "int8": []}
    with Store(str(db)) as s:
        import_tree(s, mlperf)
        real_now = store_module._now
        for day in APP_QUARTERS:
            start, base = real_now(), datetime.fromisoformat(day).replace(hour=12, tzinfo=timezone.utc)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(store_module, "_now", lambda: base + (real_now() - start))
                ids["fp32"].append(execute_run(prepare_run(RunRequest("digits", scenario="offline", quick=True)), s))
        for _ in range(2):
            request = RunRequest("digits", scenario="offline", model_variant="int8", quick=True)
            ids["int8"].append(execute_run(prepare_run(request), s))
        ids["single_stream"] = execute_run(prepare_run(RunRequest("digits", scenario="single_stream", quick=True)), s)
    return ids


@pytest.fixture(autouse=True)
def _affinity_is_restored():
    """A test that leaves this process pinned to fewer CPUs would change every test after it: fail it."""
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    yield
    if before is not None:
        after = os.sched_getaffinity(0)
        assert after == before, f"the test left this thread's CPU affinity at {sorted(after)} (was {sorted(before)})"
