"""Helpers shared by the benchmarks that set our onnxruntime backend against a bare onnxruntime loop.

The benchmark scripts import this module by name: their folder is first on sys.path when they run as scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort

from runner import registry
from runner.cards import ModelCard

__all__ = ["bare_session", "fp32_model"]


def fp32_model(task_name: str) -> tuple[Any, ModelCard, Path]:
    """(the task, its fp32 model card, the model file) of a local task whose models are built (`make models`)."""
    task = registry.get("task", task_name)()
    card, path = task.model_card("fp32")
    return task, card, path


def bare_session(model_path: Path, threads: int) -> ort.InferenceSession:
    """A bare onnxruntime session with the backend's defaults: these intra-op threads, sequential (one inter-op
    thread), every graph optimisation, on the CPU."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
