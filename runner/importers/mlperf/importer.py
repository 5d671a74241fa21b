"""Import a published MLPerf Inference submission tree into the store, one transaction per result.

`import_tree(store, path)` walks the tree (tree.py), reads each result's logs (summary.py,
detail.py, accuracy.py, compliance.py), picks the headline as MLCommons' table does
(headline.py), builds the four cards (cards.py) and stores the run with its provenance. A
result already imported (same round and source path) is counted "already present" and left
alone. A result that cannot be read without guessing is skipped, with the file and the reason
in the report; files that a result can do without (a garbled detail log, a missing
accuracy.txt) are listed too, and the result is imported from the rest. The format quirks this
handles are listed in the package docstring (runner/importers/mlperf/__init__.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runner.cards import SystemCard
from runner.errors import CardError, ImportFormatError, InfersightError
from runner.importers.mlperf import cards as mk
from runner.importers.mlperf.accuracy import judge_accuracy, parse_accuracy
from runner.importers.mlperf.benchmarks import (
    SCENARIOS,
    Benchmark,
    accuracy_fraction,
    benchmark_of,
)
from runner.importers.mlperf.compliance import (
    VERIFY_FILES,
    is_compliant,
    read_power,
    read_verdicts,
)
from runner.importers.mlperf.detail import DetailLog, parse_detail
from runner.importers.mlperf.headline import (
    Headline,
    inferred_headline,
    select_headline,
)
from runner.importers.mlperf.mapping import map_model
from runner.importers.mlperf.report import ImportReport, SkipResult
from runner.importers.mlperf.rules import rules_for
from runner.importers.mlperf.summary import parse_summary
from runner.importers.mlperf.tree import (
    ResultFolder,
    find_results,
    guess_round,
    round_root,
)
from runner.loading import read_published_json
from runner.store import Store

__all__ = ["import_tree", "Progress"]

Progress = Callable[[int, int, str], None]  # (results done, results found, current source path)
_MAX_TEXT = 1 << 16  # accuracy.txt kept up to 64 KiB
_UUID_NAMESPACE = uuid.UUID("6f1e0d8c-5a0b-4c1e-9a55-1a2b3c4d5e6f")


def import_tree(store: Store, path: str | Path, round_name: str | None = None,
                progress: Progress | None = None) -> ImportReport:
    """Import every result under `path` (a round, division or submitter folder); see the module doc."""
    root, submitters = round_root(Path(path))
    if not submitters:
        raise InfersightError(f"{path}: no MLPerf submission here (expected closed/, open/ or network/ "
                              f"folders of <Submitter>/results/...)")
    round_name = _round(round_name or guess_round(root), path)
    rules_for(round_name)  # an unknown round or a broken rules table stops here, before anything is written
    report = ImportReport(root=str(root), round=round_name)
    results = list(find_results(root, submitters))
    report.results_found = len(results)
    context = _Context(round_name, report)
    for done, result in enumerate(results):
        if progress:
            progress(done, len(results), result.source_path)
        _import_one(store, context, result)
    if progress:
        progress(len(results), len(results), "")
    return report


def _round(name: str | None, path: str | Path) -> str:
    """'v4.1' from 'v4.1' or '4.1'; InfersightError for anything else."""
    if not name:
        raise InfersightError(f"{path}: cannot tell the MLPerf round from the folder names; give it (e.g. v4.1)")
    if not re.fullmatch(r"v?\d+\.\d+", name.strip()):
        raise InfersightError(f"{name!r} is not an MLPerf round; write it like v4.1")
    return "v" + name.strip().lstrip("v")


@dataclass
class _Context:
    """What stays the same across the results of one import: the round, the report, card caches."""

    round: str
    report: ImportReport
    systems: dict[Path, SystemCard | SkipResult] = field(default_factory=dict)

    def system(self, result: ResultFolder) -> SystemCard:
        """The system card of a result's system JSON (read once per system); SkipResult if unusable."""
        path = result.system_json
        if path not in self.systems:
            try:
                self.systems[path] = _read_system(path)
            except SkipResult as exc:
                self.systems[path] = exc
        found = self.systems[path]
        if isinstance(found, SkipResult):
            where = Path(found.file).relative_to(result.submitter_dir).as_posix()
            raise SkipResult(result.summary, f"its system description {where}: {found.reason}")
        return found


def _import_one(store: Store, context: _Context, result: ResultFolder) -> None:
    report = context.report
    if store.find_imported(context.round, result.source_path) is not None:
        report.already_present += 1
        return
    try:
        cards, run, imported = _read_result(context, result)
    except SkipResult as exc:
        report.skip(exc.file, exc.reason, result=True)
        return
    except (InfersightError, ValueError, OSError) as exc:  # a file the readers above did not foresee
        report.skip(result.path, f"cannot be read: {type(exc).__name__}: {exc}", result=True)
        return
    run_id, created = store.put_imported_run(cards=cards, run=run, imported=imported)
    if created:
        report.imported += 1
        report.run_ids.append(run_id)
    else:
        report.already_present += 1


def _read_system(path: Path) -> SystemCard:
    if not path.is_file():
        raise SkipResult(path, "missing")
    try:
        data = read_published_json(path)
    except CardError as exc:
        why = str(exc).removeprefix(str(path)).lstrip(": ")
        raise SkipResult(path, f"not readable JSON ({why})") from None
    if not isinstance(data, dict):
        raise SkipResult(path, "a system description must be a JSON object")
    if mk.count_problem(data):
        raise SkipResult(path, mk.count_problem(data))
    try:
        return SystemCard.from_mlperf(data, path.name, extra={"availability": str(data.get("status", ""))})
    except CardError as exc:
        raise SkipResult(path, f"unusable system description: {exc}") from None


def _read_result(context: _Context, result: ResultFolder) -> tuple[dict, dict, dict]:
    """(cards, runs row, imported_runs row) of one result; SkipResult when it cannot be imported."""
    scenario = SCENARIOS.get(result.scenario_folder.lower())
    if scenario is None:
        raise SkipResult(result.path, f"unknown scenario folder {result.scenario_folder!r}; known: "
                                      f"Offline, Server, SingleStream, MultiStream, Interactive")
    system = context.system(result)
    summary = _read_summary(context.report, result)
    detail = _read_detail(context.report, result)
    found = benchmark_of(result.model, context.round) or map_model(result, context.round, summary, detail)
    if found is None:
        raise SkipResult(result.path, f"unknown benchmark {result.model!r}: not a model of the {context.round} "
                                      f"rules table, nor mapped by {result.submitter}/model_mapping.json")
    benchmark, cls = found
    logged = _check_same_run(result, scenario, summary, detail)
    if logged != scenario:
        headline = inferred_headline(scenario, logged, summary, detail, str(result.summary))
    else:
        headline = select_headline(benchmark, scenario, summary, detail, str(result.summary))
    return _assemble(context, result, benchmark, cls, scenario, system, summary, detail, headline)


def _read_summary(report: ImportReport, result: ResultFolder) -> dict[str, Any]:
    path = result.summary
    if not path.is_file():
        raise SkipResult(path, "missing: a result needs its performance summary")
    try:
        summary = parse_summary(path.read_bytes(), str(path))
    except OSError as exc:
        raise SkipResult(path, f"cannot read: {exc.strerror or exc}") from None
    except ImportFormatError as exc:
        raise SkipResult(path, str(exc.problem) + (f" (line {exc.line})" if exc.line else "")) from None
    if not summary["complete"]:
        raise SkipResult(path, f"truncated: ends at line {summary['lines']} without LoadGen's closing "
                               f"'errors encountered' line, so its last figures may be cut short")
    if summary["bad_lines"]:
        line, why = summary["bad_lines"][0]
        raise SkipResult(path, f"damaged at line {line}: {why}")
    for line, key, raw in summary["unreadable"]:
        report.skip(path, f"line {line}: {key!r} reads {raw!r}, not a finite number; not stored")
    return summary


def _read_detail(report: ImportReport, result: ResultFolder) -> DetailLog | None:
    """The detail log, or None (listed in the report) when it is missing or has no usable record."""
    path = result.detail
    if not path.is_file():
        report.skip(path, "missing: imported from the summary alone (settings and seeds from its "
                          "'Test Parameters Used')")
        return None
    try:
        detail = parse_detail(path.read_bytes(), str(path))
    except (OSError, ImportFormatError) as exc:
        report.skip(path, f"unusable ({getattr(exc, 'problem', exc)}); imported from the summary alone")
        return None
    if detail.bad_lines or detail.conflicts:
        report.skip(path, _damage(detail) + "; those records were left out")
    return detail


def _damage(detail: DetailLog) -> str:
    parts = []
    if detail.bad_lines:
        lines = ", ".join(str(n) for n, _ in detail.bad_lines[:5]) + (", ..." if len(detail.bad_lines) > 5 else "")
        parts.append(f"line(s) {lines}: {detail.bad_lines[0][1]}")
    if detail.conflicts:
        parts.append(f"key(s) logged twice with different values: {', '.join(detail.conflicts[:5])}")
    return "; ".join(parts)


def _check_same_run(result: ResultFolder, scenario: str, summary: dict, detail: DetailLog | None) -> str:
    """The scenario the logs describe (the folder's, or one the checker infers it from); SkipResult for
    another scenario, a non-performance run, or logs that contradict each other."""
    logged = SCENARIOS.get("".join(str(summary["scenario"]).lower().split()))
    folder = SCENARIOS[result.scenario_folder.lower()]
    if logged == "server" and folder == "interactive":
        logged = folder
    if logged != folder and (folder, logged) not in _INFERABLE:
        raise SkipResult(result.summary, f"the summary is a {summary['scenario']} run in a "
                                         f"{result.scenario_folder} folder, a result the checker cannot infer")
    if summary.get("mode") not in (None, "PerformanceOnly", "SubmissionRun"):
        raise SkipResult(result.summary, f"a {summary['mode']} run, not a performance run")
    for key, ours in (("effective_scenario", summary["scenario"]), ("result_validity", summary["result_validity"])):
        theirs = detail.get(key) if detail is not None else None
        if theirs is not None and ours is not None and str(theirs) != str(ours):
            raise SkipResult(result.detail, f"the detail log says {key} {theirs!r}, the summary {ours!r}")
    if summary["result_validity"] is None and (detail is None or detail.get("result_validity") is None):
        raise SkipResult(result.summary, "no 'Result is : VALID|INVALID' line and no result_validity in the detail log")
    return logged


# (folder scenario, logged scenario) pairs MLCommons' checker infers a result for (get_inferred_result).
_INFERABLE = {("offline", "single_stream"), ("offline", "multi_stream"), ("multi_stream", "single_stream")}


def _assemble(context: _Context, result: ResultFolder, benchmark: Benchmark, cls: str, scenario: str,
              system: SystemCard, summary: dict, detail: DetailLog | None, headline: Headline) -> tuple:
    report, fraction = context.report, accuracy_fraction(benchmark, cls)
    measurements, why = mk.read_measurements(result.measurements)
    if why:
        report.skip(result.measurements, why)
    cards = {"task": mk.task_card(benchmark, context.round), "system": system, "backend": mk.backend_card(system),
             "model": mk.model_card(benchmark, result.model, fraction, context.round, measurements)}
    accuracy_text, figures = _read_accuracy(report, result)
    quality = judge_accuracy(benchmark, fraction, figures)
    verdicts, compliant = _compliance(context, result, benchmark, cls)
    power, why = read_power(result.spl, detail, scenario)
    if why:
        report.skip(result.spl, why)
    run_summary = _summary_json(summary, detail, headline, figures, quality, power)
    run_summary.update(_round_facts(context, result, benchmark, cls, scenario, system, headline))
    run_summary["rule_notes"] = _rule_notes(context, run_summary["effective_settings"])
    run = _run_row(context.round, result, cards, scenario, summary, detail, headline, run_summary, quality,
                   compliant)
    imported = {"source": "mlperf", "round": context.round, "division": result.division,
                "submitter": result.submitter, "availability": str(system.status), "system_name": system.system_name,
                "accelerator": mk.accelerator_label(system), "accelerators_per_node": mk.accelerator_count(system),
                "model": result.model, "scenario": scenario, "source_path": result.source_path,
                "compliance": verdicts, "power": power, "accuracy_text": accuracy_text}
    stored = {kind: (card.to_dict(), card.card_hash(), _card_name(kind, card)) for kind, card in cards.items()}
    return stored, run, imported


def _compliance(context: _Context, result: ResultFolder, benchmark: Benchmark, cls: str) -> tuple[dict, bool]:
    """(verdicts, compliant): the tests the round requires of the benchmark in this division, and any
    present."""
    metrics = tuple(m for m, _ in benchmark.quality_targets) + tuple(m for m, *_ in benchmark.absolute_targets)
    required = benchmark.compliance_tests if result.division in rules_for(context.round).compliance_divisions else ()
    verdicts = read_verdicts(result.compliance, required, metrics, 0.1 if cls == "99.9" else 1.0)
    _list_unusable_verdicts(context.report, result, verdicts)
    return verdicts, is_compliant(required, verdicts)


def _round_facts(context: _Context, result: ResultFolder, benchmark: Benchmark, cls: str, scenario: str,
                 system: SystemCard, headline: Headline) -> dict[str, Any]:
    """What the round's rules say of this result, kept in its summary (benchmark, mapping, bounds, date)."""
    model = result.model.lower()
    mapped = model != benchmark.name and not model.startswith(benchmark.name)
    return {"benchmark": benchmark.name, "accuracy_class": cls, "mapped_from": result.model if mapped else None,
            "inferred_from": headline.inferred_from, "number_of_nodes": mk.node_count(system),
            "token_latency_bounds_ms": benchmark.token_latency_ms.get(scenario),
            "round_published": rules_for(context.round).published.isoformat()}


def _rule_notes(context: _Context, settings: dict[str, Any]) -> list[str]:
    """Where the run's effective settings fall short of the round's rules (noted; LoadGen's verdict stands)."""
    rules, notes = rules_for(context.round), []
    duration = settings.get("min_duration_ms", settings.get("min_duration (ms)"))
    if isinstance(duration, int) and not isinstance(duration, bool) and duration < rules.min_duration_ms:
        notes.append(f"min_duration_ms {duration} is below the round's {rules.min_duration_ms}")
    return notes


def _list_unusable_verdicts(report: ImportReport, result: ResultFolder, verdicts: dict[str, str]) -> None:
    """Name every compliance test whose evidence is missing or gives no verdict (the run is not compliant)."""
    for test, verdict in verdicts.items():
        if verdict in ("MISSING", "UNREADABLE"):
            files = " and ".join(VERIFY_FILES.get(test, ("verify_*.txt",)))
            why = ("is missing or lacks " + files if verdict == "MISSING"
                   else f"{files}: no TEST PASS/FAIL verdict in it")
            report.skip(result.compliance / test, f"{test} {why}; counted {verdict}, not PASS")
    fallback = result.compliance / "TEST01" / "accuracy"
    if verdicts.get("TEST01") == "FAIL" and not fallback.is_dir():
        report.skip(fallback, "absent: TEST01 failed (its deterministic accuracy check, or performance) and the "
                              "checker's fallback evidence (baseline/compliance_accuracy.txt) is not here; "
                              "counted FAIL")


def _card_name(kind: str, card: Any) -> str:
    return {"task": lambda c: c.metadata.name, "model": lambda c: c.name, "backend": lambda c: c.backend,
            "system": lambda c: c.system_name}[kind](card)


def _read_accuracy(report: ImportReport, result: ResultFolder) -> tuple[str | None, dict[str, float]]:
    path = result.accuracy
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        report.skip(path, "missing: the run is imported without its quality figures")
        return None, {}
    figures, bad = parse_accuracy(text)
    for line, metric, raw in bad:
        report.skip(path, f"line {line}: {metric} reads {raw!r}, not a finite number; not stored")
    if not figures and not bad:
        report.skip(path, "no quality figure found in it; the run is imported without them")
    return text[:_MAX_TEXT], figures


def _summary_json(summary: dict, detail: DetailLog | None, headline: Headline, figures: dict,
                  quality: dict, power: dict | None) -> dict[str, Any]:
    """Every figure of the logs, as the run's summary (units in the names)."""
    latency = summary["percentiles_ns"].get("latency", {})
    out = {"source": "mlperf", "headline_field": headline.field, "headline_source": headline.source,
           "scenario_in_log": summary["scenario"], "sut_name": summary["sut_name"],
           "mlperf_summary": summary["values"], "percentiles_ns": summary["percentiles_ns"],
           "latency_per_query": bool(summary.get("per_query_latency")),
           "early_stopping_ns": summary["early_stopping"], "early_stopping_notes": summary["early_stopping_notes"],
           "satisfied": summary["satisfied"], "recommendations": summary["recommendations"],
           "test_parameters": summary["test_parameters"], "warnings": summary["warnings"],
           "errors": summary["errors"], "notes": summary["notes"], "accuracy": figures,
           "accuracy_bounds": quality["bounds"], "power": power,
           "test_datetime": detail.get("test_datetime") if detail is not None else None}
    out.update({f"latency_p{p}_ms": latency[p] / 1e6 for p in ("50", "90", "99") if p in latency})
    out.update(_settings(summary, detail))
    return out


def _settings(summary: dict, detail: DetailLog | None) -> dict[str, Any]:
    if detail is not None and detail.effective_settings():
        results = {k: v for k, v in detail.values.items()
                   if k.startswith(("result_", "early_stopping_", "loadgen_", "qsl_", "power_")) or k == "test_datetime"}
        return {"effective_settings": detail.effective_settings(), "effective_settings_source": "mlperf_log_detail.txt",
                "detail": results}
    return {"effective_settings": summary["test_parameters"], "effective_settings_source": "mlperf_log_summary.txt"}


def _run_row(round_name: str, result: ResultFolder, cards: dict, scenario: str, summary: dict,
             detail: DetailLog | None, headline: Headline, run_summary: dict, quality: dict,
             compliant: bool) -> dict[str, Any]:
    validity = summary["result_validity"] or detail.get("result_validity")
    return {"uuid": str(uuid.uuid5(_UUID_NAMESPACE, f"mlperf/{round_name}/{result.source_path}")),
            "task_name": cards["task"].metadata.name, "task_version": cards["task"].metadata.version,
            "model_variant": result.model, "backend_name": cards["backend"].backend, "scenario": scenario,
            "status": "complete", "validity": validity, "validity_reasons": _reasons(summary, validity),
            "headline_metric": headline.metric, "headline_value": headline.value, "headline_units": headline.units,
            "summary": run_summary, "quick": False, "compliant": compliant,
            "settings": {"scenario": run_summary["effective_settings"], "backend": cards["backend"].settings,
                         "model_variant": result.model, "quick": False},
            "accuracy_metric": quality["metric"], "accuracy_value": quality["value"],
            "accuracy_target": quality["target"], "accuracy_passed": quality["passed"],
            "provenance": "imported", "source": f"MLPerf Inference {round_name} {result.division}/{result.submitter}",
            "hostname": result.system, "pid": None, "started_at": _when(detail, run_summary["round_published"]),
            "finished_at": _now()}


def _reasons(summary: dict, validity: str) -> list[str]:
    if validity != "INVALID":
        return []
    failed = [f"{name} not satisfied" for name, ok in summary["satisfied"].items() if ok is False]
    return failed + list(summary["recommendations"])


def _when(detail: DetailLog | None, published: str) -> datetime:
    """When the run was measured (the detail log's test_datetime), else its round's publication date."""
    stamp = detail.get("test_datetime") if detail is not None else None
    try:
        when = datetime.fromisoformat(str(stamp))
    except ValueError:
        when = datetime.fromisoformat(published)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _now() -> datetime:
    return datetime.now(timezone.utc)
