"""Store-level analyses shared by the CLI, the reports and the app: each returns a JSON-able dict.

`analyze_run` (a run's CIs), `compare_refs` (runs or configurations), `repro_of_runs` and
`repro_of_config` (reproducibility of replicas), `trends` (history by period), `headline_ci`,
and `analyze_store` (all of it over a whole store, each run read once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analysis import load
from analysis._checks import lower_is_better, names
from analysis.compare import compare_many
from analysis.repro import DEFAULT_TOLERANCE, reproducibility
from analysis.samples import batch_figures, metric_kind
from analysis.trend import GROUP_COLUMNS, MLPERF_GROUP_COLUMNS, trend
from runner.errors import AnalysisError
from runner.store import RunRecord, Store

__all__ = ["analyze_run", "headline_ci", "compare_refs", "repro_of_runs", "repro_of_config", "trends",
           "analyze_store", "run_brief", "model_files_note"]

_THROUGHPUT_KEYS = {"samples": "samples_per_second", "tokens": "tokens_per_second"}


def run_brief(run: RunRecord) -> dict[str, Any]:
    """The fields of a run that say what it is and what it measured."""
    keys = ("id", "uuid", "task_name", "task_version", "model_variant", "backend_name", "scenario", "status",
            "validity", "headline_metric", "headline_value", "headline_units", "provenance", "started_at")
    return {k: getattr(run, k) for k in keys}


def headline_ci(run: RunRecord, ci: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The CI that goes with a run's headline figure ({estimate, low, high, confidence, method, ...}),
    or None when there is none (no records, or a headline that is a setting: server's target QPS)."""
    metric = run.headline_metric
    if not ci or not metric or run.scenario == "server":
        return None
    try:
        kind, pct = metric_kind(metric)
    except AnalysisError:
        return None
    if kind == "percentile":
        found = (ci.get("latency_ms") or {}).get(f"p{pct:g}")
        if found and (run.summary or {}).get("early_stopping_estimate_ms") is not None:
            found = {**found, "note": (found.get("note", "") + "; " if found.get("note") else "") +
                     "interval of the plain percentile; the headline is MLPerf's early-stopping estimate"}
        return found
    if kind == "mean":
        return (ci.get("latency_ms") or {}).get("mean")
    if metric == "queries_per_second" and ci.get("queries") != ci.get("samples"):
        return None
    return (ci.get("throughput") or {}).get(_THROUGHPUT_KEYS[kind])


def analyze_run(store: Store, ref: str | int, *, confidence: float = 0.95, recompute: bool = False) -> dict[str, Any]:
    """A run's within-run CIs (stored, or computed on read), its headline's CI and its configuration."""
    run = store.get_run(ref)
    ci, source = load.run_ci(store, run, confidence=confidence, recompute=recompute)
    notes = [] if ci is not None else [f"no within-run intervals: {source}"]
    if run.status != "complete":
        notes.append(f"the run is {run.status}: figures cover what it measured before it stopped")
    replicas = load.config_runs(store, run)
    return {"run": run_brief(run), "config_key": load.config_key(run), "replicas": [r.id for r in replicas],
            "ci": ci, "ci_source": source if ci is not None else None, "headline_ci": headline_ci(run, ci),
            "notes": notes}


def _metadata_problems(sides: Sequence[list[RunRecord]], refs: Sequence[str]) -> list[str]:
    problems = []
    for key in load.CHECKED_METADATA:
        seen = {ref: sorted({str(getattr(r, key)) for r in side}) for ref, side in zip(refs, sides)}
        if len({v for vals in seen.values() for v in vals}) > 1:
            problems.append(f"{key} differs: " + "; ".join(f"{ref}: {', '.join(v[:12] for v in vals)}"
                                                            for ref, vals in seen.items()))
    return problems


def model_files_note(store: Store, sides: Sequence[list[RunRecord]]) -> str:
    """When the runs' model cards differ: which model file (sha256) each run measured and whether it is the
    file its task card pins. Runs made before a task pinned its reference files (or with a rebuild of other
    bytes) are told apart from runs of the pinned reference: a comparison needs the same bytes on both sides."""
    seen: dict[str, list[str]] = {}
    for run in (r for side in sides for r in side):
        seen.setdefault(run.model_hash, []).append(str(run.id))
    if len(seen) < 2:
        return ""
    runs = {r.model_hash: r for side in sides for r in side}
    parts = [f"run(s) {', '.join(ids)}: {_model_file(store, runs[digest])}" for digest, ids in seen.items()]
    return ". The model files differ: " + "; ".join(parts) + (
        ". Measure again with the pinned reference files (`infersight build TASK` checks them) so both sides use "
        "the same bytes")


def _model_file(store: Store, run: RunRecord) -> str:
    try:
        model, task = store.get_card("model", run.model_hash), store.get_card("task", run.task_hash)
    except KeyError:
        return "model card not stored"
    sha, pin = model.get("sha256"), (task.get("models") or {}).get(run.model_variant)
    if sha is None:
        return "an imported model (no file)"
    if pin is None:
        return f"{model.get('file')} sha256 {sha[:16]}, made when the task pinned no reference file (unpinned)"
    verdict = "the pinned reference" if pin["sha256"] == sha else f"not the pinned {pin['sha256'][:16]}"
    return f"{model.get('file')} sha256 {sha[:16]} ({verdict})"


def _side_values(store: Store, side: list[RunRecord], metric: str, unit: str, batches: int) -> list[float]:
    if unit == "runs":
        values = [load.run_figure(r, metric) for r in side]
        missing = [r.id for r, v in zip(side, values) if v is None]
        if missing:
            raise AnalysisError(f"runs {names(missing)} have no {metric} figure")
        return [float(v) for v in values]
    out: list[float] = []
    for run in side:
        rec = load.run_records(store, run)
        if rec is None:
            raise AnalysisError(f"run {run.id} has no per-query records (imported?), and with one run a side the "
                                f"comparison needs them; compare configurations with 2+ runs each (config:KEY)")
        out += batch_figures(rec, metric, batches).tolist()
    return out


def compare_refs(store: Store, refs: Sequence[str], *, metric: str | None = None, margin: float = 0.02,
                 confidence: float = 0.95, force: bool = False, batches: int = 16) -> dict[str, Any]:
    """Compare the first reference (baseline) with each other one; a reference is a run or config:KEY.

    With 2+ runs on every side the figures are run-level (the run is the unit of replication);
    otherwise each run's contiguous batches stand in (within-run noise only, said in `warnings`).
    Runs whose checked metadata (task name and version, model hash) differs are refused unless `force`.
    """
    if len(refs) < 2:
        raise AnalysisError("compare needs a baseline and at least one other run or configuration")
    sides = [load.resolve_side(store, ref) for ref in refs]
    metric = metric or sides[0][0].headline_metric
    if not metric:
        raise AnalysisError(f"run {sides[0][0].id} has no headline figure; name one with --metric")
    warnings = _metadata_problems(sides, refs)
    if warnings and not force:
        raise AnalysisError("refusing to compare runs whose checked metadata differs (" + " | ".join(warnings) +
                            ")" + model_files_note(store, sides) + "; use --force to compare anyway")
    unit = "runs" if all(len(s) >= 2 for s in sides) else "batches"
    if unit == "batches":
        warnings.append("fewer than 2 runs on a side: contiguous batches within each run stand in for replicas, "
                        "so the result shows within-run noise only, not run-to-run variation")
    values = [_side_values(store, side, metric, unit, batches) for side in sides]
    results = compare_many(values[0], {ref: v for ref, v in zip(refs[1:], values[1:])}, margin=margin,
                           confidence=confidence)
    lower = lower_is_better(metric, sides[0][0].headline_units)
    out = []
    for ref, side, vals in zip(refs[1:], sides[1:], values[1:]):
        c = results[ref].to_dict()
        ratio = c["ratio_geometric_means"]["estimate"]
        c["better"] = None if c["verdict"] != "different" else (ratio < 1) == lower
        out.append({"ref": ref, "runs": [r.id for r in side], "values": vals, **c})
    return {"metric": metric, "lower_is_better": lower, "unit": unit, "confidence": confidence, "margin": margin,
            "baseline": {"ref": refs[0], "runs": [r.id for r in sides[0]], "values": values[0]},
            "comparisons": out, "warnings": warnings}


def repro_of_runs(store: Store, runs: Sequence[RunRecord], *, metric: str | None = None,
                  tolerance: float = DEFAULT_TOLERANCE, confidence: float = 0.95, batches: int = 16) -> dict[str, Any]:
    """Reproducibility of replica runs (variance components over their within-run batches)."""
    if not runs:
        raise AnalysisError("reproducibility: no runs to analyse")
    keys = {load.config_key(r) for r in runs}
    if len(keys) > 1:
        raise AnalysisError(f"reproducibility needs replicas of one configuration; runs "
                            f"{names([r.id for r in runs])} span {len(keys)} configurations")
    metric = metric or runs[0].headline_metric
    frame = load.within_run_frame(store, runs, metric, batches)
    result = reproducibility(frame, tolerance=tolerance, confidence=confidence)
    return {"config_key": keys.pop(), "metric": metric, "units": runs[0].headline_units,
            "run_ids": [r.id for r in runs], **result}


def repro_of_config(store: Store, ref: str | int, **kwargs: Any) -> dict[str, Any]:
    """Reproducibility of every complete run with the configuration of run `ref`."""
    runs = load.config_runs(store, store.get_run(ref))
    if len(runs) < 2:
        raise AnalysisError(f"run {ref}'s configuration has {len(runs)} complete run(s); reproducibility needs 2+ "
                            f"(measure more with `infersight repro TASK ... -n 3`)")
    return repro_of_runs(store, runs, **kwargs)


def trends(store: Store, *, by: str = "quarter", task: str | None = None, scenario: str | None = None,
           backend: str | None = None, source: str | None = None, metric: str | None = None,
           confidence: float = 0.95) -> dict[str, Any]:
    """Trends of headline figures (or `metric`) by period, per task / variant / scenario / system / backend /
    metric (imported MLPerf results: per task / variant / scenario / comparable system identity / division /
    metric, dated by their round's publication; `by="round"` takes MLPerf rounds as the periods)."""
    if by == "round" and source == "measured":
        raise AnalysisError("trend by round: rounds are MLPerf's; runs measured here have none (use --by quarter)")
    frame = load.runs_frame(store, task=task, scenario=scenario, backend=backend,
                            source="mlperf" if by == "round" else source, metric=metric)
    if frame.empty:
        asked = ", ".join(f"{k} {v}" for k, v in (("task", task), ("scenario", scenario), ("backend", backend),
                                                   ("source", source)) if v) or "any"
        figure = f"a {metric} figure" if metric else "a headline figure"
        raise AnalysisError(f"trend: the history is empty: no complete runs with {figure} ({asked})"
                            + ("; trends by round need results imported from MLPerf" if by == "round" else ""))
    imported = frame["provenance"] == "imported"
    groups = []
    for part, columns in ((frame[~imported], GROUP_COLUMNS), (frame[imported], MLPERF_GROUP_COLUMNS)):
        if not part.empty:
            groups += trend(part, by, group_by=columns, confidence=confidence)
    return {"by": by, "runs": len(frame), "excluded_runs": frame.attrs.get("excluded", 0), "groups": groups}


def analyze_store(store: Store, *, task: str | None = None, by: str = "quarter", confidence: float = 0.95,
                  tolerance: float = DEFAULT_TOLERANCE, batches: int = 16) -> dict[str, Any]:
    """The whole survey of a store, each run's records read once: every complete run's CIs, the
    reproducibility of every configuration with 2+ runs, and the trends. Runs too short for batch
    figures, and configurations that cannot be analysed, are listed under "skipped" with the reason."""
    runs = store.list_runs(task=task, status="complete", limit=None)
    cis: dict[int, Any] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    skipped: dict[str, str] = {}
    for run in runs:
        rec = load.run_records(store, run)
        cis[run.id] = load.run_ci(store, run, confidence=confidence, records=rec)[0]
        if run.headline_value is None:
            continue
        try:
            rows.setdefault(load.config_key(run), []).extend(load.observations(run, rec, None, batches))
        except AnalysisError as exc:
            skipped[f"run {run.id}"] = str(exc)
    repro = {}
    for key, obs in rows.items():
        frame = pd.DataFrame(obs, columns=list(load.OBSERVATION_COLUMNS))
        if frame["run"].nunique() < 2:
            continue
        try:
            repro[key] = reproducibility(frame, tolerance=tolerance, confidence=confidence)
        except AnalysisError as exc:
            skipped[f"configuration {key}"] = str(exc)
    history = load.runs_frame(store, runs=runs)
    groups = trend(history, by, confidence=confidence) if not history.empty else []
    return {"runs": len(runs), "cis": cis, "reproducibility": repro, "trends": groups, "skipped": skipped}
