"""Export a measured run as MLPerf LoadGen logs, in a submission tree's layout.

Writes, under DIR:
  open/infersight/systems/<system>.json                       the system card (MLPerf fields)
  open/infersight/results/<system>/<model>/<Scenario>/performance/run_1/
      mlperf_log_summary.txt   LoadGen's human summary (same headings, same wording as v4.1)
      mlperf_log_detail.txt    `:::MLLOG {json}` lines: effective settings, seeds, result_* keys
  open/infersight/results/<system>/<model>/<Scenario>/accuracy/accuracy.txt
Figures are recomputed from the per-query records with LoadGen's conventions (percentile =
sorted latency at floor(n * p); early stopping at 99% confidence), so MLPerf tooling and our
importer read the same numbers back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from runner.errors import InfersightError
from runner.store import RunRecord, Store
from runner.loadgen import early_stopping
from runner.loadgen.result import PERCENTILES, loadgen_percentile

__all__ = ["export_run", "MLPERF_SCENARIOS"]

MLPERF_SCENARIOS = {"single_stream": "SingleStream", "multi_stream": "MultiStream", "server": "Server",
                    "offline": "Offline", "interactive": "Interactive"}
_RULE = "=" * 48


def export_run(store: Store, run_id: int | str, out_dir: Path) -> Path:
    """Write the LoadGen logs of one measured run; returns the run_1 folder."""
    run = store.get_run(run_id)
    if run.provenance != "measured" or run.status != "complete":
        raise InfersightError(f"run {run.id}: only complete runs measured here can be exported "
                              f"(this one is {run.provenance}, {run.status})")
    scenario = MLPERF_SCENARIOS.get(run.scenario)
    rec = store.read_perf_samples(run.id)
    if scenario is None or not len(rec["completed_ns"]):
        raise InfersightError(f"run {run.id}: scenario {run.scenario!r} has no MLPerf export")
    system = store.get_card("system", run.system_hash)
    system_id = _slug(f"{system['system_name'].split(' (')[0]}-{run.backend_name}")
    root = Path(out_dir) / "open" / "infersight"
    folder = root / "results" / system_id / f"{run.task_name}-{run.model_variant}" / scenario
    perf = folder / "performance" / "run_1"
    perf.mkdir(parents=True, exist_ok=True)
    figures = _figures(run, rec)
    (perf / "mlperf_log_summary.txt").write_text(_summary(run, scenario, figures))
    (perf / "mlperf_log_detail.txt").write_text(_detail(run, scenario, figures))
    (folder / "accuracy").mkdir(exist_ok=True)
    (folder / "accuracy" / "accuracy.txt").write_text(_accuracy(run))
    (root / "systems").mkdir(parents=True, exist_ok=True)
    (root / "systems" / f"{system_id}.json").write_text(json.dumps(_system_json(system), indent=4) + "\n")
    return perf


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _figures(run: RunRecord, rec: dict[str, np.ndarray]) -> dict[str, Any]:
    lat = np.sort(rec["completed_ns"] - rec["scheduled_ns"])
    n, queries = len(lat), len(np.unique(rec["query_index"]))
    span = int(rec["completed_ns"].max() - rec["scheduled_ns"].min())
    eff = run.summary.get("effective_settings", {})
    fig: dict[str, Any] = {"n": n, "queries": queries, "span_ns": span, "eff": eff,
                           "min": int(lat[0]), "max": int(lat[-1]), "mean": int(lat.mean()),
                           "pct": {p: int(loadgen_percentile(lat, p)) for p in PERCENTILES}}
    fig["qps_with"] = queries * 1e9 / span if span else 0.0
    fig["qps_without"] = 1e9 / lat.mean() if lat.mean() else 0.0
    fig["samples_per_second"] = n * 1e9 / span if span else 0.0
    for p in (90.0, 99.0):
        fig[f"es{p:g}"] = early_stopping.percentile_estimate(lat, p / 100)[0]
    return fig


def _flags(run: RunRecord, fig: dict[str, Any]) -> dict[str, bool]:
    reasons = " ".join(run.validity_reasons or [])
    return {"duration": "min duration" not in reasons,
            "queries": "min query count" not in reasons and "min sample count" not in reasons,
            "early": "early stopping" not in reasons}


def _validity(run: RunRecord) -> str:
    """MLPerf knows VALID and INVALID: a load-generator limit (runner.loadgen.lateness) is not a valid result."""
    return "INVALID" if run.validity == "LOADGEN_LIMIT" else run.validity


def _yes(flag: bool) -> str:
    return "Yes" if flag else "NO"


def _summary(run: RunRecord, scenario: str, fig: dict[str, Any]) -> str:
    flags, eff = _flags(run, fig), fig["eff"]
    lines = [_RULE, "MLPerf Results Summary", _RULE, f"SUT name : infersight-{run.backend_name}",
             f"Scenario : {scenario}", "Mode     : PerformanceOnly"]
    if scenario == "Offline":
        lines.append(f"Samples per second: {fig['samples_per_second']:g}")
    else:
        lines.append(f"90th percentile latency (ns) : {fig['pct'][90.0]}")
    lines += [f"Result is : {_validity(run)}", f"  Min duration satisfied : {_yes(flags['duration'])}",
              f"  Min queries satisfied : {_yes(flags['queries'])}",
              f"  Early stopping satisfied: {_yes(flags['early'])}"]
    if scenario != "Offline":
        lines += _early_stopping_lines(fig)
    lines += ["", _RULE, "Additional Stats", _RULE]
    if scenario != "Offline":
        lines += [f"QPS w/ loadgen overhead         : {fig['qps_with']:.2f}",
                  f"QPS w/o loadgen overhead        : {fig['qps_without']:.2f}", ""]
    lines += [f"Min latency (ns)                : {fig['min']}", f"Max latency (ns)                : {fig['max']}",
              f"Mean latency (ns)               : {fig['mean']}"]
    lines += [f"{p:.2f} percentile latency (ns)   : {v}" for p, v in fig["pct"].items()]
    lines += ["", _RULE, "Test Parameters Used", _RULE]
    lines += [f"{k}: {v}" if k.endswith(")") and "latency" in k else f"{k} : {v}"
              for k, v in _test_parameters(scenario, fig, eff).items()]
    lines += ["", "No warnings encountered during test.", "", "No errors encountered during test.", ""]
    return "\n".join(lines)


def _early_stopping_lines(fig: dict[str, Any]) -> list[str]:
    needed = early_stopping.min_queries(1, 0.90)
    out = ["Early Stopping Result:", f" * Processed at least {needed} queries ({fig['queries']})."]
    for p in (90, 99):
        if fig[f"es{p}"] is not None:
            out.append(f" * Early stopping {p}th percentile estimate: {int(fig[f'es{p}'])}")
    return out


def _test_parameters(scenario: str, fig: dict[str, Any], eff: dict[str, Any]) -> dict[str, Any]:
    per_query = fig["n"] if scenario == "Offline" else 1
    return {"samples_per_query": per_query, "target_qps": eff.get("expected_qps") or 0,
            "target_latency (ns)": 0, "max_async_queries": 1,
            "min_duration (ms)": eff.get("min_duration_ms", 0), "max_duration (ms)": eff.get("max_duration_ms", 0),
            "min_query_count": eff.get("min_query_count", eff.get("min_sample_count", 1)),
            "max_query_count": eff.get("max_query_count", 0),
            "qsl_rng_seed": eff.get("qsl_rng_seed", 0), "sample_index_rng_seed": eff.get("sample_index_rng_seed", 0),
            "schedule_rng_seed": eff.get("schedule_rng_seed", 0)}


def _mllog(key: str, value: Any) -> str:
    return ":::MLLOG " + json.dumps({"key": key, "value": value, "time_ms": 0.0, "namespace": "mlperf::logging",
                                     "event_type": "POINT_IN_TIME",
                                     "metadata": {"is_error": False, "is_warning": False, "file": "infersight",
                                                  "line_no": 0, "pid": 0, "tid": 0}})


def _detail(run: RunRecord, scenario: str, fig: dict[str, Any]) -> str:
    flags = _flags(run, fig)
    entries: list[tuple[str, Any]] = [("effective_scenario", scenario), ("effective_test_mode", "PerformanceOnly")]
    entries += [(f"effective_{k.replace(' (ns)', '_ns').replace(' (ms)', '_ms')}", v)
                for k, v in _test_parameters(scenario, fig, fig["eff"]).items()]
    entries += [("result_validity", _validity(run)), ("result_min_duration_met", flags["duration"]),
                ("result_min_queries_met", flags["queries"]), ("early_stopping_met", flags["early"]),
                ("result_query_count", fig["queries"])]
    if scenario == "Offline":
        entries.append(("result_samples_per_second", fig["samples_per_second"]))
    else:
        entries += [("result_qps_with_loadgen_overhead", fig["qps_with"]),
                    ("result_qps_without_loadgen_overhead", fig["qps_without"]),
                    ("early_stopping_latency_ss", fig["es90"]), ("early_stopping_latency_ms", fig["es99"])]
    entries += [("result_min_latency_ns", fig["min"]), ("result_max_latency_ns", fig["max"]),
                ("result_mean_latency_ns", fig["mean"])]
    entries += [(f"result_{p:.2f}_percentile_latency_ns", v) for p, v in fig["pct"].items()]
    return "\n".join(_mllog(k, v) for k, v in entries) + "\n"


def _accuracy(run: RunRecord) -> str:
    if run.accuracy_value is None:
        return "no accuracy recorded\n"
    return (f"{{'{run.accuracy_metric}': {100 * run.accuracy_value:.3f}, "
            f"'target': {100 * run.accuracy_target:.3f}}}\n")


def _system_json(system: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in system.items() if k not in ("card_version", "package_versions")}
