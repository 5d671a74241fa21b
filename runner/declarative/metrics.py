"""The quality metrics a declarative task knows, all computed by scikit-learn's `sklearn.metrics`.

How a model output becomes predictions: a classifier's scores [batch, classes] give their argmax (its
top k for top_k_accuracy); an integer output [batch] is taken as class ids; a single float score
[batch] or [batch, 1] is thresholded at 0.5. A regression output is compared value by value with the
references (flattened per sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from runner.errors import CardError

__all__ = ["Metric", "METRICS", "check_metric", "score"]


@dataclass(frozen=True)
class Metric:
    """One metric: the sklearn function, what it compares, its direction and the options it takes."""

    function: str
    kind: str  # "labels" (class ids), "scores" (class scores, top k) or "values" (regression)
    higher_is_better: bool
    options: dict[str, Any]  # option -> default


METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy_score", "labels", True, {}),
    "balanced_accuracy": Metric("balanced_accuracy_score", "labels", True, {}),
    "top_k_accuracy": Metric("top_k_accuracy_score", "scores", True, {"k": 5}),
    "f1": Metric("f1_score", "labels", True, {"average": "macro"}),
    "precision": Metric("precision_score", "labels", True, {"average": "macro"}),
    "recall": Metric("recall_score", "labels", True, {"average": "macro"}),
    "mse": Metric("mean_squared_error", "values", False, {}),
    "mae": Metric("mean_absolute_error", "values", False, {}),
    "r2": Metric("r2_score", "values", True, {}),
}
_AVERAGES = ("micro", "macro", "weighted")


def check_metric(name: str, options: dict[str, Any], higher_is_better: bool, where) -> Metric:
    """The metric named in the card (one of METRICS: the task card's loader checked the name), its options and
    direction checked; CardError at the card's line."""
    metric = METRICS[name]
    unknown = sorted(set(options) - set(metric.options))
    if unknown:
        takes = ", ".join(metric.options) or "none"
        raise CardError(f"{where('declarative', 'metric_options')}: {name} takes no option(s) {', '.join(unknown)}; "
                        f"its options: {takes}")
    merged = {**metric.options, **options}
    if "k" in merged and not (isinstance(merged["k"], int) and merged["k"] >= 1):
        raise CardError(f"{where('declarative', 'metric_options', 'k')}: k must be a whole number >= 1")
    if "average" in merged and merged["average"] not in _AVERAGES:
        raise CardError(f"{where('declarative', 'metric_options', 'average')}: average must be one of "
                        f"{', '.join(_AVERAGES)}")
    if higher_is_better != metric.higher_is_better:
        raise CardError(f"{where('metrics', 'quality', 'higher_is_better')}: {name} is "
                        f"{'higher' if metric.higher_is_better else 'lower'}-is-better; set higher_is_better: "
                        f"{str(metric.higher_is_better).lower()}")
    return metric


def score(name: str, options: dict[str, Any], output: np.ndarray, references: np.ndarray
          ) -> tuple[float, list[Any], list[bool] | None]:
    """(metric value, per-sample predictions, per-sample correct or None) of one model output; the
    correct flags are given for accuracy and top_k_accuracy, whose value is their mean."""
    from sklearn import metrics as skm

    metric = METRICS[name]
    kwargs = {**metric.options, **options}
    function = getattr(skm, metric.function)
    if metric.kind == "values":
        predicted = output.reshape(len(output), -1).astype(np.float64)
        truth = references.reshape(len(references), -1).astype(np.float64)
        if predicted.shape != truth.shape:
            raise ValueError(f"the scored output has {predicted.shape[1]} value(s) per sample, the references "
                             f"{truth.shape[1]}")
        value = function(truth, predicted)
        flat = predicted[:, 0] if predicted.shape[1] == 1 else predicted
        return float(value), flat.tolist(), None
    labels = _labels(output)
    truth = references.astype(np.int64)
    if metric.kind == "scores":
        k = kwargs["k"]
        classes = output.shape[1] if output.ndim == 2 else 0
        if classes <= k:
            raise ValueError(f"top_k_accuracy with k={k} needs more than {k} class scores per sample; the output "
                             f"has {classes}")
        top = np.argsort(-output, axis=1, kind="stable")[:, :k]
        correct = (top == truth[:, None]).any(axis=1)
        value = function(truth, output, k=k, labels=np.arange(classes))
        return float(value), labels.tolist(), correct.tolist()
    value = function(truth, labels, **kwargs)
    # per-sample "correct" flags only where their mean is the metric (the run's validation checks that)
    correct = (labels == truth).tolist() if name == "accuracy" else None
    return float(value), labels.tolist(), correct


def _labels(output: np.ndarray) -> np.ndarray:
    if output.ndim == 2 and output.shape[1] > 1:
        return np.argmax(output, axis=1).astype(np.int64)
    flat = output.reshape(len(output))
    if flat.dtype.kind in "biu":
        return flat.astype(np.int64)
    return (flat >= 0.5).astype(np.int64)
