"""Read the quality figures of an accuracy/accuracy.txt and judge them against the benchmark's targets.

Each benchmark's accuracy script prints differently: `accuracy=76.076%, good=..., total=...`
(resnet50), `mAP=37.325%` (retinanet), `{"exact_match": .., "f1": ..}` (bert), `AUC=80.166%`
(dlrm-v2), `Accuracy: mean = 0.86112, ...` (3d-unet), a Python dict with 'rouge1', 'rouge2',
'rougeL', 'tokens_per_sample', 'gsm8k', 'mbxp' (LLMs), `{'FID_SCORE': .., 'CLIP_SCORE': ..}`
(stable-diffusion-xl). The patterns mirror the ones MLCommons' submission checker uses.
"""

from __future__ import annotations

import re
from typing import Any

from runner.importers.mlperf.benchmarks import Benchmark

__all__ = ["parse_accuracy", "judge_accuracy"]

_NUM = r"([0-9]+(?:\.[0-9]+)?)"
_PATTERNS = {
    "acc": re.compile(r"^accuracy=" + _NUM + "%?"),
    "AUC": re.compile(r"^AUC=" + _NUM),
    "mAP": re.compile(r"^mAP=" + _NUM),
    "F1": re.compile(r"^\{[\"']exact_match[\"']:\s*[0-9.]+,\s*[\"']f1[\"']:\s*" + _NUM),
    "WER": re.compile(r"Word Error Rate:.*, accuracy=" + _NUM + "%"),
    "DICE": re.compile(r"Accuracy:\s*mean\s*=\s*" + _NUM),
    "ROUGE1": re.compile(r"'rouge1':\s" + _NUM),
    "ROUGE2": re.compile(r"'rouge2':\s" + _NUM),
    "ROUGEL": re.compile(r"'rougeL':\s" + _NUM),
    "ROUGELSUM": re.compile(r"'rougeLsum':\s" + _NUM),
    "GEN_LEN": re.compile(r"'gen_len':\s" + _NUM),
    "TOKENS_PER_SAMPLE": re.compile(r"'tokens_per_sample':\s" + _NUM),
    "CLIP_SCORE": re.compile(r"'CLIP_SCORE':\s" + _NUM),
    "FID_SCORE": re.compile(r"'FID_SCORE':\s" + _NUM),
    "gsm8k_accuracy": re.compile(r"'gsm8k':\s" + _NUM),
    "mbxp_accuracy": re.compile(r"'mbxp':\s" + _NUM),
}


def parse_accuracy(text: str | bytes) -> dict[str, float]:
    """Every quality figure found in the text (metric -> value; the first printing of each)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    found: dict[str, float] = {}
    for line in text.splitlines():
        for metric, pattern in _PATTERNS.items():
            match = pattern.search(line)
            if match and metric not in found:
                found[metric] = float(match.group(1))
    return found


def judge_accuracy(benchmark: Benchmark, fraction: float | None, figures: dict[str, float]) -> dict[str, Any]:
    """The headline quality figure, its target and whether every bound is met (None: a figure is missing).

    Bounds: `fraction` x reference for the quality metrics, plus the benchmark's absolute ranges
    (generated length, tokens per sample, FID and CLIP score windows).
    """
    bounds = {m: (fraction * ref, None) for m, ref in benchmark.quality_targets} if fraction else {}
    bounds.update({m: (low, high) for m, low, high in benchmark.absolute_targets})
    checks = [_within(figures[m], low, high) for m, (low, high) in bounds.items() if m in figures]
    if not all(checks):
        passed = False
    else:
        passed = True if bounds and len(checks) == len(bounds) else None
    metric = benchmark.quality_metric
    return {"metric": metric, "value": figures.get(metric), "target": bounds.get(metric, (None, None))[0],
            "passed": passed, "bounds": {m: list(b) for m, b in bounds.items()}}


def _within(value: float, low: float, high: float | None) -> bool:
    return value >= low and (high is None or value <= high)
