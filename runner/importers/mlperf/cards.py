"""The four cards of an imported MLPerf result: task (the benchmark), model, backend and system.

The task card is the benchmark of one round, the same for every submitter (so one hash):
task `mlperf-<benchmark>` (dots become dashes: task names allow none), version "<round>.0"
("v4.1" -> "4.1.0"). The accuracy class of a model folder ("-99", "-99.9") is the model
card's `accuracy_target_fraction`; the model folder name is the model variant.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from runner.cards import BackendCard, ModelCard, SystemCard, TaskCard
from runner.errors import CardError
from runner.importers.mlperf.benchmarks import Benchmark, round_number
from runner.loading import read_published_json

__all__ = ["task_name", "task_version", "task_card", "model_card", "backend_card", "read_measurements",
           "accelerator_count", "accelerator_label", "node_count", "count_problem", "MAX_COUNT"]

_PRECISIONS = {"fp32": "fp32", "float32": "fp32", "fp16": "fp16", "float16": "fp16", "half": "fp16",
               "bf16": "bf16", "bfloat16": "bf16", "fp8": "fp8", "float8": "fp8", "int8": "int8", "int4": "int4"}
# (word in the framework string, backend name, runtime name), most specific first.
_FRAMEWORKS = (("tensorrt-llm", "tensorrt-llm", "TensorRT-LLM"), ("trt-llm", "tensorrt-llm", "TensorRT-LLM"),
               ("tensorrt", "tensorrt", "TensorRT"), ("vllm", "vllm", "vLLM"), ("openvino", "openvino", "OpenVINO"),
               ("onnxruntime", "onnxruntime", "onnxruntime"), ("pytorch", "pytorch", "PyTorch"),
               ("tensorflow", "tensorflow", "TensorFlow"), ("jax", "jax", "JAX"), ("flax", "flax", "Flax"))
_VERSION = r"v?(\d+(?:\.\d+)+(?:[+\-][0-9A-Za-z.]+)?)"
_NONE = {"", "n/a", "na", "none", "-"}


def task_name(benchmark: Benchmark) -> str:
    """'mlperf-<benchmark>' in the task-name alphabet (llama3.1 -> llama3-1)."""
    return "mlperf-" + re.sub(r"[^a-z0-9_-]", "-", benchmark.name.lower())


def task_version(round_name: str) -> str:
    """The round as a semantic version: 'v4.1' -> '4.1.0'."""
    major, minor = round_number(round_name)
    return f"{major}.{minor}.0"


def task_card(benchmark: Benchmark, round_name: str) -> TaskCard:
    """The task card of a benchmark in a round (the same for every submitter)."""
    fraction = 0.99 if benchmark.quality_targets else None
    target = {"fraction_of_reference": fraction} if fraction else {"absolute": benchmark.absolute_targets[0][1]}
    return TaskCard.model_validate({
        "metadata": {"name": task_name(benchmark), "version": task_version(round_name), "category": benchmark.category,
                     "description": f"MLPerf Inference {round_name} {benchmark.name}: {benchmark.description}; "
                                    f"results imported from published MLCommons submissions."},
        "data": {"datasets": [{"name": benchmark.dataset, "samples": benchmark.dataset_samples,
                               "source": "MLCommons MLPerf Inference reference dataset (not shipped here)"}],
                 "split": None, "sampling": {"performance_sample_count": benchmark.performance_sample_count}},
        "metrics": {"quality": {"metric": benchmark.quality_metric, "target": target},
                    "performance": _performance_metrics(benchmark)},
        "scenarios": {name: {} for name in benchmark.scenarios},
        "constraints": {"server_latency_bound_ms": benchmark.server_latency_ms},
        "origin": "mlperf"})


def _performance_metrics(benchmark: Benchmark) -> list[str]:
    latency = [m for s, m in (("single_stream", "latency_p90_ms"), ("multi_stream", "latency_p99_ms"))
               if s in benchmark.scenarios]
    if benchmark.tokens == "tokens":
        return ["tokens_per_second", "ttft_p99_ms", "tpot_p99_ms", *latency]
    if benchmark.tokens == "inferred":
        return ["tokens_per_second", *latency]
    return ["samples_per_second", "queries_per_second", *latency]


def read_measurements(folder: Path) -> tuple[dict[str, Any], str]:
    """(the model facts of a measurements folder's JSON, "") or ({}, why there are none)."""
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    for path in files:
        try:
            data = read_published_json(path)
        except CardError as exc:
            return {}, f"not readable JSON ({exc})"
        if isinstance(data, dict):
            return data, ""
    return {}, "no measurements JSON (the model's data types are unknown)"


def model_card(benchmark: Benchmark, model: str, fraction: float | None, round_name: str,
               measurements: dict[str, Any]) -> ModelCard:
    """The imported model card: the MLPerf reference model as this submitter ran it."""
    weights = measurements.get("weight_data_types")
    weights = weights if isinstance(weights, str) else ""
    other = {k: v for k, v in measurements.items() if k != "weight_data_types" or not isinstance(v, str)}
    return ModelCard.model_validate({
        "task": task_name(benchmark), "task_version": task_version(round_name), "name": model, "variant": model,
        "origin": "imported", "format": None, "precision": _PRECISIONS.get(weights.strip().lower()),
        "weight_data_types": weights, "accuracy_target_fraction": fraction, "other_fields": other})


def backend_card(system: SystemCard) -> BackendCard:
    """The backend card from the system description's `framework` (tensorrt, vllm, ... else mlperf-submission)."""
    framework = str(system.framework or "")
    lowered = framework.lower()
    for word, name, runtime in _FRAMEWORKS:
        found = re.search(re.escape(word) + r"\b", lowered)
        if found:
            version = re.match(r"[\s:=-]*" + _VERSION, lowered[found.end():])
            return _backend(name, runtime, version.group(1) if version else "", system, framework)
    version = re.search(_VERSION, framework)
    return _backend("mlperf-submission", framework or "unknown", version.group(1) if version else "", system, framework)


def _backend(name: str, runtime: str, version: str, system: SystemCard, framework: str) -> BackendCard:
    return BackendCard(backend=name, plugin_version="", runtime=runtime, runtime_version=version,
                       device=accelerator_label(system) or "cpu", settings={"framework": framework})


def accelerator_count(system: SystemCard) -> int | None:
    """accelerators_per_node as a number ("8" -> 8); None when it is not one ("N/A")."""
    value = system.accelerators_per_node
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def node_count(system: SystemCard) -> int | None:
    """number_of_nodes as a number ("2" -> 2); None when it is not one."""
    text = str(system.number_of_nodes).strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


MAX_COUNT = 1_000_000  # no system has more accelerators per node, or nodes; larger counts are damage


def count_problem(data: dict[str, Any]) -> str:
    """Why a system JSON's counts cannot be stored ("" if they can): whole numbers beyond MAX_COUNT."""
    for key in ("accelerators_per_node", "number_of_nodes", "host_processors_per_node"):
        text = str(data.get(key, "")).strip()
        if text.isdigit() and int(text) > MAX_COUNT:
            return f"{key} is {text[:30]}{'...' if len(text) > 30 else ''}, beyond any real system ({MAX_COUNT:,})"
    return ""


def accelerator_label(system: SystemCard) -> str:
    """'8x NVIDIA H200-SXM-141GB', or '' for a system without accelerators."""
    count, name = accelerator_count(system), str(system.accelerator_model_name).strip()
    if not count or name.lower() in _NONE:
        return ""
    return f"{count}x {name}"
