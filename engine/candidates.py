"""Candidates: one row per system x backend x settings x model variant x scenario, read from the store.

`load(store, task, scenario)` reads the complete, VALID runs of a task and scenario (measured here,
and imported from MLPerf: task `resnet50` finds the runs of `mlperf-resnet50`), takes each run's
figures (engine._figures), and aggregates the runs of one configuration (same card hashes and
settings: analysis.load.config_key) into one row: the median of each figure, with the between-run CI
as its uncertainty (median +- t(0.975, n-1) s / sqrt(n), not below 0: the run is the unit of replication). A
configuration with one run keeps that run's within-run CIs where known (`cis(run)`, by default
analysis.load.run_ci: stored with the run, or computed from its performance log), else it is a point
estimate (lo = hi = value); imported MLPerf results are point estimates. Every row names its source runs (`run_ids`) and
provenance, so each figure traces back to the runs it came from. A Server configuration measured here is
one candidate whatever QPS it was tested at: its throughput is its capacity (engine._capacity: the peak
search's result, or the highest VALID target QPS as a lower bound), said in `capacity_basis`.

Columns (CANDIDATE_COLUMNS): identity (candidate, task, scenario, system, system_id, backend, settings,
model_variant, accelerator, accelerators), provenance (provenance, source, submitter, run_ids,
n_runs, compliant, quick, ci_source, capacity_basis), figures with `_lo`/`_hi` (FIGURES: samples_per_s,
tokens_per_s, p50_ms, p90_ms, p99_ms, ttft_ms, tpot_ms, accuracy, accuracy_ratio, power_w),
accuracy_metric, accuracy_reference, and the system card's own price and power
fields (card_price_per_hour_usd, card_purchase_price_usd, card_power_w).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import func, select

from analysis.load import MLPERF_PREFIX, config_key, run_ci, task_names
from engine._capacity import capacity_runs
from engine._figures import FIGURES, ci_columns, run_figures, settings_text, system_label
from runner.bundles import bundled_from
from runner.errors import EngineError, InfersightError
from runner.store import RunRecord, Store
from runner.store.schema import runs as runs_table

__all__ = ["load", "available", "aggregate", "from_records", "run_cis_of", "CANDIDATE_COLUMNS", "CATEGORICAL",
           "FIGURES", "SCENARIOS", "MLPERF_PREFIX"]

SCENARIOS = ("single_stream", "multi_stream", "server", "offline", "interactive")
_IDENTITY = ["candidate", "task", "scenario", "system", "system_id", "backend", "settings", "model_variant",
             "accelerator", "accelerators", "provenance", "source", "submitter", "run_ids", "n_runs", "compliant",
             "quick", "ci_source", "accuracy_metric", "accuracy_reference", "card_price_per_hour_usd",
             "card_purchase_price_usd", "card_power_w", "config_key", "capacity_basis"]
CANDIDATE_COLUMNS = _IDENTITY + [f"{c}{s}" for c in FIGURES for s in ("", "_lo", "_hi")]
# repetitive text columns are categoricals: selecting rows of 100,000 candidates then moves integer codes
CATEGORICAL = ("task", "scenario", "system", "system_id", "backend", "settings", "model_variant", "accelerator",
               "provenance", "source", "submitter", "ci_source", "accuracy_metric")
CisFunction = Callable[[RunRecord], dict[str, tuple[float, float]]]


def load(store: Store, task: str, scenario: str, *, cis: CisFunction | None = None) -> pd.DataFrame:
    """The candidates of `task` under `scenario` (see the module doc); EngineError saying what data exists
    when there is none. `cis(run) -> {column: (lo, hi)}` gives per-run CIs (default: run_cis_of(store))."""
    scenario = scenario.strip().lower()
    if scenario not in SCENARIOS:
        raise EngineError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    base, published = task_names(task)
    runs = store.list_runs(task=base, scenario=scenario, status="complete", source="measured", limit=None)
    runs += store.list_runs(task=published, scenario=scenario, status="complete", source="mlperf", limit=None)
    if not runs:
        held = available(store)
        close = difflib.get_close_matches(base, sorted(set(held["task"])), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close and close[0] != base else ""
        raise EngineError(f"no complete runs of task {task!r} under scenario {scenario!r} in the store{hint}; "
                          f"it holds: {_describe(held)}")
    valid = [r for r in runs if r.validity == "VALID"]
    limits = [r.id for r in runs if r.validity == "LOADGEN_LIMIT"]
    if not valid:
        raise EngineError(f"none of the {len(runs)} runs of {task!r} {scenario} is VALID (runs "
                          f"{', '.join(str(r.id) for r in runs[:10])}"
                          + (f"; {len(limits)} are load-generator limits, which say nothing about the system"
                             if limits else "") + "); see `infersight show RUN` for why")
    cards, cis = _CardCache(store), cis or run_cis_of(store)
    rows = [{**_run_row(store, run, base, cards, cis), **({"config_key": key} if key else {}),
             "capacity_basis": basis} for run, key, basis in capacity_runs(store, valid)]
    frame = aggregate(pd.DataFrame(rows))
    frame.attrs["invalid_run_ids"] = [r.id for r in runs if r.validity not in ("VALID", "LOADGEN_LIMIT")]
    frame.attrs["loadgen_limit_run_ids"] = limits  # inconclusive: neither a candidate nor a failure
    return frame


class _CardCache:
    """Cards by (kind, hash), read once."""

    def __init__(self, store: Store) -> None:
        self.store, self.cards = store, {}

    def get(self, kind: str, card_hash: str) -> dict[str, Any]:
        key = (kind, card_hash)
        if key not in self.cards:
            try:
                self.cards[key] = self.store.get_card(kind, card_hash)
            except KeyError:
                self.cards[key] = {}
        return self.cards[key]


def _run_row(store: Store, run: RunRecord, task: str, cards: _CardCache, cis: CisFunction) -> dict[str, Any]:
    """One run as a row: identity, provenance, figures and their per-run CIs."""
    imported = run.imported
    if imported is None and run.provenance == "imported":
        imported = store.get_imported(run.id)
    system, model = cards.get("system", run.system_hash), cards.get("model", run.model_hash)
    figures = run_figures(run, model, imported)
    label = system_label(system, imported)
    row = {"task": task, "scenario": run.scenario, "system": label, "system_id": _system_id(imported, label),
           "backend": run.backend_name, "settings": settings_text(run, model, imported),
           "model_variant": run.model_variant, "provenance": run.provenance,
           "submitter": (imported or {}).get("submitter", ""), "source": _source(run, imported, system),
           "accelerator": (imported or {}).get("accelerator") or system.get("accelerator_model_name", ""),
           "accelerators": _int((imported or {}).get("accelerators_per_node", system.get("accelerators_per_node"))),
           "run_id": run.id, "compliant": bool(run.compliant), "quick": bool(run.quick),
           "card_price_per_hour_usd": _float(system.get("price_per_hour_usd")),
           "card_purchase_price_usd": _float(system.get("purchase_price_usd")),
           "card_power_w": _float(system.get("power_w")), "config_key": _config_key(run), **figures}
    for column, (lo, hi) in cis(run).items():
        if column == "samples_per_s" and run.scenario == "server":
            continue  # a Server run's throughput is the target QPS it met, not a measured rate with a CI
        if column in FIGURES:
            row[f"{column}_lo"], row[f"{column}_hi"] = lo, hi
    return row


def _system_id(imported: dict[str, Any] | None, label: str) -> str:
    """A name unique to one system description: '<submitter>/<system folder>' of an MLPerf result (several
    submissions may share a system_name, e.g. AMD's 1x and 8x MI300X), the system label otherwise."""
    parts = str((imported or {}).get("source_path", "")).split("/")
    return f"{parts[1]}/{parts[3]}" if imported is not None and len(parts) > 3 else label


def _source(run: RunRecord, imported: dict[str, Any] | None, system: dict[str, Any]) -> str:
    if imported is not None:
        return f"MLPerf Inference {imported.get('round', '')} {imported.get('division', '')}".strip()
    bundle = bundled_from(run)
    if bundle is not None:
        return f"measured on {run.hostname} ({bundle})"
    return f"measured here ({run.hostname})"


def _config_key(run: RunRecord) -> str:
    """Runs with equal keys are replicas of one configuration (analysis.load.config_key: same cards,
    scenario and settings); every imported result is a configuration of its own."""
    return f"imported-{run.uuid}" if run.provenance == "imported" else config_key(run)


def run_cis_of(store: Store) -> CisFunction:
    """Per-run CIs by our columns from analysis.load.run_ci (none for imported runs or on failure)."""
    def cis(run: RunRecord) -> dict[str, tuple[float, float]]:
        if run.provenance == "imported":
            return {}
        try:
            return ci_columns(run_ci(store, run)[0])
        except InfersightError:
            return {}
    return cis


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per config_key from one row per run (columns as _run_row makes them; figures it lacks are
    NaN); see the module doc."""
    out = []
    for key, group in runs.groupby("config_key", sort=False):
        first = group.iloc[0]
        row = {c: first[c] for c in _IDENTITY if c in group.columns and c not in ("run_ids", "n_runs")}
        row.update(config_key=key, n_runs=len(group), run_ids=",".join(str(i) for i in sorted(group["run_id"])),
                   compliant=bool(group["compliant"].all()), quick=bool(group["quick"].any()))
        row["ci_source"] = "between runs" if len(group) > 1 else \
            ("within run" if any(f"{c}_lo" in group and group[f"{c}_lo"].notna().any() for c in FIGURES)
             else "none (point estimates)")
        for column in FIGURES:
            row.update(_combine(group, column))
        out.append(row)
    frame = pd.DataFrame(out)
    frame["candidate"] = _labels(frame)
    frame = frame.reindex(columns=CANDIDATE_COLUMNS).sort_values(["system", "backend", "candidate"], ignore_index=True)
    return _categorical(frame)


def _categorical(frame: pd.DataFrame) -> pd.DataFrame:
    """The CATEGORICAL columns as pandas categoricals."""
    return frame.astype({c: "category" for c in CATEGORICAL if c in frame and frame[c].dtype != "category"})


def _combine(group: pd.DataFrame, column: str) -> dict[str, float]:
    """Median of a figure over a configuration's runs, with its CI (between runs, or the one run's own)."""
    values = group[column].to_numpy(dtype=float) if column in group else np.empty(0)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {column: math.nan, f"{column}_lo": math.nan, f"{column}_hi": math.nan}
    median = float(np.median(finite))
    if finite.size > 1:  # every figure is non-negative: a t interval reaching below 0 stops at 0
        half = stats.t.ppf(0.975, finite.size - 1) * finite.std(ddof=1) / math.sqrt(finite.size)
        return {column: median, f"{column}_lo": max(median - half, 0.0), f"{column}_hi": median + half}
    lo = group[f"{column}_lo"].iloc[0] if f"{column}_lo" in group else math.nan
    hi = group[f"{column}_hi"].iloc[0] if f"{column}_hi" in group else math.nan
    if math.isnan(lo) or math.isnan(hi):
        lo = hi = median
    return {column: median, f"{column}_lo": float(lo), f"{column}_hi": float(hi)}


def _labels(frame: pd.DataFrame) -> pd.Series:
    """Unique, readable candidate names: system / backend / variant, plus settings where needed."""
    labels = frame["system"] + " / " + frame["backend"] + " / " + frame["model_variant"].astype(str)
    dup = labels.duplicated(keep=False)
    labels[dup] = labels[dup] + " (" + _differing(frame.loc[dup, "settings"].astype(str), labels[dup]) + ")"
    dup = labels.duplicated(keep=False)
    labels[dup] = labels[dup] + " [" + frame.loc[dup, "system_id"] + "]"
    dup = labels.duplicated(keep=False)
    keys = frame["config_key"].astype(str).str[:6]
    keys = keys.where(keys != "", pd.Series(np.arange(len(frame)), index=frame.index).astype(str))
    labels[dup] = labels[dup] + " #" + keys[dup]
    return labels


def _differing(settings: pd.Series, labels: pd.Series) -> pd.Series:
    """Each settings text ('a=1, b=2') cut to the items that differ among the rows sharing its label."""
    out = settings.copy()
    for _, group in settings.groupby(labels, sort=False):
        items = [set(text.split(", ")) for text in group]
        common = set.intersection(*items) if len(items) > 1 else set()
        for index, text in group.items():
            kept = [item for item in text.split(", ") if item not in common]
            out[index] = ", ".join(kept) or text
    return out


def from_records(records: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A candidates frame from rows that give only some columns (hand-built sets, synthetic data, uploads).

    Each row needs `system`; missing figures are NaN, missing `_lo`/`_hi` bounds equal the figure
    (a point estimate), `system_id` defaults to `system`, `candidate` to a label made of the rest.
    """
    frame = pd.DataFrame(records).copy()
    if "system" not in frame:
        raise EngineError("candidate rows need a 'system' column")
    defaults = {"backend": "", "settings": "", "model_variant": "", "task": "", "scenario": "", "accelerator": "",
                "accelerators": 0, "provenance": "measured", "source": "", "submitter": "", "run_ids": "",
                "n_runs": 1, "compliant": True, "quick": False, "ci_source": "none (point estimates)",
                "accuracy_metric": "", "accuracy_reference": math.nan, "config_key": "",
                "capacity_basis": ""}
    for column, value in defaults.items():
        if column not in frame:
            frame[column] = value
    for column in [c for c in CANDIDATE_COLUMNS if c.startswith("card_")] + list(FIGURES):
        if column not in frame:
            frame[column] = math.nan
    for column in FIGURES:
        for side in ("_lo", "_hi"):
            if column + side not in frame:
                frame[column + side] = frame[column]
    if "system_id" not in frame:
        frame["system_id"] = frame["system"]
    if "candidate" not in frame:
        frame["candidate"] = _labels(frame)
    return _categorical(frame.reindex(columns=list(dict.fromkeys(CANDIDATE_COLUMNS + list(frame.columns)))))


def available(store: Store) -> pd.DataFrame:
    """What the store holds to recommend from: task (MLPerf prefix dropped), scenario and VALID runs."""
    query = (select(runs_table.c.task_name, runs_table.c.scenario, func.count().label("runs"))
             .where(runs_table.c.status == "complete", runs_table.c.validity == "VALID")
             .group_by(runs_table.c.task_name, runs_table.c.scenario))
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    frame = pd.DataFrame(rows, columns=["task_name", "scenario", "runs"])
    frame["task"] = frame["task_name"].str.removeprefix(MLPERF_PREFIX)
    return frame.groupby(["task", "scenario"], as_index=False)["runs"].sum().sort_values(["task", "scenario"])


def _describe(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "no VALID runs at all (measure some with `infersight run`, or `infersight import mlperf PATH`)"
    parts = [f"{task} ({', '.join(g['scenario'])})" for task, g in frame.groupby("task")]
    return "; ".join(parts)
