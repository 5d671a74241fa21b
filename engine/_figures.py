"""The figures of one stored run, in the candidates' columns and units (used by engine.candidates).

Measured runs carry their figures in the run summary (`samples_per_second`, `latency_p99_ms`, ...);
runs imported from MLPerf carry LoadGen's summary (`mlperf_summary`, `percentiles_ns`) plus the
importer's headline, accuracy and power. Both come out as the same dict of floats (NaN when a
figure does not exist for the run), with the accuracy metric and reference beside them.
"""

from __future__ import annotations

import math
from typing import Any

from runner.errors import InfersightError
from runner.importers.mlperf.benchmarks import benchmark, benchmark_of
from runner.store import RunRecord

__all__ = ["FIGURES", "run_figures", "system_label", "settings_text", "ci_columns"]

# candidates column -> what it holds (units in the names).
FIGURES = {
    "samples_per_s": "inferences per second: samples/s (Offline), queries/s = samples/s (Server)",
    "tokens_per_s": "generated tokens per second (LLM tasks)",
    "p50_ms": "p50 latency, ms", "p90_ms": "p90 latency, ms", "p99_ms": "p99 latency, ms",
    "ttft_ms": "p99 time to first token, ms", "tpot_ms": "p99 time per output token, ms",
    "accuracy": "quality figure in the task's metric units", "accuracy_ratio": "accuracy / reference",
    "power_w": "measured average power during the run, W",
}
_NAN = float("nan")
# summary key (measured runs) -> column; the first present wins. A Server run's throughput is its
# headline instead: the target QPS it met the latency bound at (as MLPerf's), not the QPS it happened to see.
_MEASURED = {
    "samples_per_s": ("samples_per_second", "queries_per_second"),
    "tokens_per_s": ("tokens_per_second",),
    "p50_ms": ("latency_p50_ms",), "p90_ms": ("latency_p90_ms",), "p99_ms": ("latency_p99_ms",),
    "ttft_ms": ("ttft_p99_ms",), "tpot_ms": ("tpot_p99_ms",), "power_w": (),
}


def _num(value: Any) -> float:
    """A finite float, else NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _NAN
    return float(value) if math.isfinite(value) else _NAN


def run_figures(run: RunRecord, model_card: dict[str, Any] | None, imported: dict[str, Any] | None) -> dict:
    """Figures of one run (FIGURES columns, NaN where absent) plus accuracy_metric and accuracy_reference."""
    summary = run.summary or {}
    out = _imported_figures(run, summary, imported) if imported is not None else _measured_figures(run, summary)
    accuracy = _num(run.accuracy_value)
    reference = _reference(run, model_card, imported)
    out.update(accuracy=accuracy, accuracy_metric=run.accuracy_metric or "",
               accuracy_reference=reference, accuracy_ratio=accuracy / reference if reference > 0 else _NAN)
    return out


def _measured_figures(run: RunRecord, summary: dict[str, Any]) -> dict[str, float]:
    """The first finite figure among each column's summary keys (a Server run's throughput: its headline)."""
    out = {}
    for column, keys in _MEASURED.items():
        found = [_num(summary.get(k)) for k in keys]
        out[column] = next((v for v in found if not math.isnan(v)), _NAN)
    if run.scenario == "server" and run.headline_metric == "queries_per_second":
        out["samples_per_s"] = _num(run.headline_value)
    return out


def _imported_figures(run: RunRecord, summary: dict[str, Any], imported: dict[str, Any]) -> dict[str, float]:
    values = summary.get("mlperf_summary") or {}
    percentiles = summary.get("percentiles_ns") or {}
    units, headline = run.headline_units, _num(run.headline_value)
    out = {column: _num(summary.get(f"latency_{column}")) for column in ("p50_ms", "p90_ms", "p99_ms")}
    out["tokens_per_s"] = headline if units == "Tokens/s" else _NAN
    out["samples_per_s"] = _imported_rate(run.scenario, units, headline, values, summary)
    out["ttft_ms"] = _num((percentiles.get("first token latency") or {}).get("99")) / 1e6
    out["tpot_ms"] = _num((percentiles.get("time to output token") or {}).get("99")) / 1e6
    power = imported.get("power") or {}
    out["power_w"] = _num(power.get("avg_power_w"))
    return out


def _imported_rate(scenario: str, units: str | None, headline: float, values: dict, summary: dict) -> float:
    """Samples/s of an imported result: the headline where it is one, else LoadGen's own figures."""
    if units in ("Samples/s", "Queries/s"):
        return headline
    if scenario in ("server", "interactive"):  # an Interactive result is a Server run with tighter bounds
        return _num(values.get("completed samples per second"))
    if scenario == "offline":
        return _num(values.get("samples per second"))
    if scenario == "single_stream" and _num(values.get("qps w/ loadgen overhead")) > 0:
        return _num(values["qps w/ loadgen overhead"])
    per_query = _num((summary.get("test_parameters") or {}).get("samples_per_query"))
    mean_ns = _num(values.get("mean latency (ns)"))
    per_query = per_query if scenario == "multi_stream" and per_query > 0 else 1.0
    return per_query * 1e9 / mean_ns if mean_ns > 0 else _NAN


def _reference(run: RunRecord, model_card: dict[str, Any] | None, imported: dict[str, Any] | None) -> float:
    """The reference quality the accuracy ratio divides by: the fp32 model's (measured) or the benchmark's."""
    if imported is not None:
        refs = dict(_benchmark(run, imported).quality_targets) if _benchmark(run, imported) else {}
        return _num(refs.get(run.accuracy_metric))
    quality = (model_card or {}).get("reference_quality") or {}
    return _num(quality.get("fp32_reference", quality.get("value")))


def _benchmark(run: RunRecord, imported: dict[str, Any]) -> Any:
    """The benchmark (of its round's rules table) an imported run was judged as; None if none is known."""
    round_name, name = str(imported.get("round", "")), (run.summary or {}).get("benchmark")
    try:
        if name:
            return benchmark(name, round_name)
        found = benchmark_of(str(imported.get("model", "")), round_name)
        return found[0] if found else None
    except (InfersightError, KeyError):
        return None


def system_label(system_card: dict[str, Any], imported: dict[str, Any] | None) -> str:
    """The system's name as the catalogue knows it: the MLPerf system name, or for runs measured here
    the system card's name plus the CPUs the run could use ('vm (AMD EPYC) [1 CPU]'), so runs pinned
    to 1 and to 2 cores are distinct systems."""
    if imported is not None:
        return str(imported.get("system_name") or system_card.get("system_name", "?"))
    count = system_card.get("cpu_count_used") or system_card.get("host_processor_logical_core_count") \
        or system_card.get("host_processor_core_count")
    name = system_card.get("system_name", "?")
    return f"{name} [{count} CPU{'s' if count != 1 else ''}]" if count else str(name)


def settings_text(run: RunRecord, model_card: dict[str, Any] | None, imported: dict[str, Any] | None) -> str:
    """The settings that tell configurations of one system and backend apart, as short text."""
    backend = (run.settings or {}).get("backend") or {}
    if imported is not None:
        precision = (model_card or {}).get("precision") or ""
        return ", ".join(p for p in (precision, str(backend.get("framework", ""))) if p)
    parts = []
    for key, value in sorted(backend.items()):
        if key == "providers":
            value = "+".join(str(p).replace("ExecutionProvider", "") for p in value)
        parts.append(f"{key}={value}")
    if run.quick:
        parts.append("quick")
    return ", ".join(parts)


def ci_columns(ci: dict[str, Any] | None) -> dict[str, tuple[float, float]]:
    """Our columns' (lo, hi) from a run's within-run CIs as analysis.ci.run_cis gives them (and stores in
    the run summary under "ci"): latency_ms.p50/p90/p99, throughput.samples_per_second and
    tokens_per_second, ttft_ms.p99, tpot_ms.p99. Unbounded intervals (a bound None) are left out."""
    if not isinstance(ci, dict):
        return {}
    places = {f"p{p}_ms": ("latency_ms", f"p{p}") for p in (50, 90, 99)}
    places.update(samples_per_s=("throughput", "samples_per_second"), tokens_per_s=("throughput", "tokens_per_second"),
                  ttft_ms=("ttft_ms", "p99"), tpot_ms=("tpot_ms", "p99"))
    out = {}
    for column, (block, key) in places.items():
        found = (ci.get(block) or {}).get(key) if isinstance(ci.get(block), dict) else None
        if isinstance(found, dict):
            lo, hi = _num(found.get("low")), _num(found.get("high"))
            if not (math.isnan(lo) or math.isnan(hi)) and lo <= hi:
                out[column] = (lo, hi)
    return out
