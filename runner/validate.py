"""Checks that a run's four cards and two logs are present and consistent (四卡二日志).

For a run imported from outside (provenance 'imported', e.g. MLPerf), the performance log is
the published summary as parsed into the run's summary (it must hold the headline, a validity
verdict and the latency percentiles; there are no per-query records to demand), and the
accuracy log is the quality figures read from the published accuracy.txt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ValidationError

from runner.cards import BackendCard, ModelCard, SystemCard, TaskCard, card_hash
from runner.errors import StoreError
from runner.store import RunRecord, Store

__all__ = ["check_run", "why_non_compliant", "CARD_MODELS"]

CARD_MODELS = {"task": TaskCard, "model": ModelCard, "backend": BackendCard, "system": SystemCard}


def check_run(store: Store, run_id: int | str) -> list[str]:
    """Everything missing or inconsistent in a run, one sentence each; empty when it is complete."""
    run = store.get_run(run_id)
    problems: list[str] = []
    cards = {kind: _check_card(store, run, kind, problems) for kind in CARD_MODELS}
    _check_links(run, cards, problems)
    if run.provenance == "imported":
        _check_imported_perf_log(run, problems)
        _check_imported_accuracy_log(run, problems)
        return problems
    _check_perf_log(store, run, problems)
    _check_accuracy_log(store, run, problems)
    return problems


def why_non_compliant(run: RunRecord, imported: dict[str, Any] | None = None) -> str | None:
    """Why a run is not compliant, in a few words (None when it is): quick, lowered minimums, failed tests."""
    if run.compliant:
        return None
    if imported is not None:
        failed = [f"{test} {verdict}" for test, verdict in (imported.get("compliance") or {}).items()
                  if verdict != "PASS"]
        return "compliance tests " + (", ".join(failed) if failed else "missing")
    return "a --quick run with 1 s minimums" if run.quick else "minimums lowered below the task card's"


def _check_card(store: Store, run: RunRecord, kind: str, problems: list[str]) -> Any:
    digest = run.card_hashes.get(kind)
    if not digest:
        problems.append(f"{kind} card: missing (the run names no {kind} card)")
        return None
    try:
        data = store.get_card(kind, digest)
    except StoreError as exc:
        problems.append(f"{kind} card: {exc}")
        return None
    except KeyError:
        problems.append(f"{kind} card: {digest[:12]} is not in the store")
        return None
    if card_hash(SystemCard.hashed_part(data) if kind == "system" else data) != digest:
        problems.append(f"{kind} card: stored content does not hash to {digest[:12]} (changed after the run)")
    try:
        return CARD_MODELS[kind].model_validate(data)
    except ValidationError as exc:
        problems.append(f"{kind} card: invalid: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
        return None


def _check_links(run: RunRecord, cards: dict[str, Any], problems: list[str]) -> None:
    task, model, backend = cards["task"], cards["model"], cards["backend"]
    if task and task.metadata.name != run.task_name:
        problems.append(f"task card names task {task.metadata.name!r}, the run {run.task_name!r}")
    if model and model.task != run.task_name:
        problems.append(f"model card belongs to task {model.task!r}, not {run.task_name!r}")
    if model and task and model.task_version != task.metadata.version:
        problems.append(f"model card was built for task version {model.task_version}, "
                        f"the task card is {task.metadata.version}")
    if model and model.variant != run.model_variant:
        problems.append(f"model card is variant {model.variant!r}, the run says {run.model_variant!r}")
    if backend and backend.backend != run.backend_name:
        problems.append(f"backend card is {backend.backend!r}, the run says {run.backend_name!r}")


def _check_perf_log(store: Store, run: RunRecord, problems: list[str]) -> None:
    rec = store.read_perf_samples(run.id)
    n = len(rec["completed_ns"])
    if n == 0:
        problems.append("performance log: no per-query records")
        return
    expected = (run.summary or {}).get("sample_count")
    if expected is not None and expected != n:
        problems.append(f"performance log: {n} records but the summary counts {expected} samples")
    if np.any(rec["issued_ns"] < rec["scheduled_ns"]) or np.any(rec["completed_ns"] < rec["issued_ns"]):
        problems.append("performance log: timestamps out of order (need scheduled <= issued <= completed)")
    if run.scenario == "interactive" and not {"first_token_ns", "output_tokens"} <= set(rec):
        problems.append("performance log: a streaming run needs first_token_ns and output_tokens for every request")
    elif "first_token_ns" in rec and (np.any(rec["first_token_ns"] < rec["issued_ns"])
                                      or np.any(rec["completed_ns"] < rec["first_token_ns"])):
        problems.append("performance log: first-token times out of order (need issued <= first token <= completed)")
    if run.validity is None:
        problems.append("performance log: no validity verdict (the scenario did not finish)")


def _check_accuracy_log(store: Store, run: RunRecord, problems: list[str]) -> None:
    rows = store.read_accuracy_samples(run.id)
    if not rows:
        problems.append("accuracy log: no per-sample predictions")
        return
    if run.accuracy_value is None or run.accuracy_target is None:
        problems.append("accuracy log: no quality metric or target recorded")
        return
    flags = [r["correct"] for r in rows if r["correct"] is not None]
    if flags and abs(float(np.mean(flags)) - run.accuracy_value) > 1e-9:
        problems.append(f"accuracy log: per-sample records give {np.mean(flags):.6f}, "
                        f"the run records {run.accuracy_value:.6f}")


def _check_imported_perf_log(run: RunRecord, problems: list[str]) -> None:
    summary = run.summary or {}
    if run.headline_value is None or not run.headline_metric:
        problems.append("performance log: the imported summary gives no headline figure")
    if run.validity is None:
        problems.append("performance log: the imported summary gives no validity verdict")
    if not (summary.get("percentiles_ns") or {}).get("latency"):
        problems.append("performance log: the imported summary holds no latency percentiles")


def _check_imported_accuracy_log(run: RunRecord, problems: list[str]) -> None:
    figures = (run.summary or {}).get("accuracy")
    if not figures:
        problems.append("accuracy log: no quality figures (the published accuracy.txt is missing or unreadable)")
    elif run.accuracy_value is None:
        problems.append(f"accuracy log: no {run.accuracy_metric or 'headline quality'} figure among "
                        f"{', '.join(sorted(figures))}")
