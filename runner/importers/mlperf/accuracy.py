"""Read the quality figures of an accuracy/accuracy.txt and judge them against the benchmark's targets.

Each benchmark's accuracy script prints differently: `accuracy=76.076%, good=..., total=...`
(resnet50, rgat), `mAP=37.325%` (retinanet), `{'Total': 54.25, ...}` (pointpainting), `{"exact_match":
.., "f1": ..}` (bert), `AUC=80.166%` (dlrm-v2), `Accuracy: mean = 0.86112, ...` (3d-unet), `Word Error
Rate: 2.2%, accuracy=97.8%` (whisper), a Python dict with 'rouge1', 'rouge2', 'rougeL', 'rougeLsum',
'gen_len', 'tokens_per_sample', 'gsm8k', 'mbxp', 'exact_match' (LLMs), `{'FID_SCORE': '23.9..',
'CLIP_SCORE': '31.7..'}` (stable-diffusion-xl, quoted numbers from v5.1 on). The patterns are MLCommons'
submission checker's (ACC_PATTERN in tools/submission/submission_checker/constants.py), except that
they capture the whole printed value: a value that is no finite number ("abc", "nan", "1e999") is
returned as a bad line (line, metric, text) instead of being dropped unseen.
"""

from __future__ import annotations

import re
from typing import Any

from runner.importers.mlperf._numbers import parse_number
from runner.importers.mlperf.benchmarks import Benchmark

__all__ = ["parse_accuracy", "judge_accuracy"]

_V = r"'?([^\s,%}'\"\]]+)"  # the printed value, optionally quoted (v5.1 SDXL), up to a separator
_PATTERNS = {
    "acc": re.compile(r"^(?:\{\"accuracy|accuracy)[\": ]*=?\s*" + _V),
    "AUC": re.compile(r"^AUC=" + _V),
    "mAP": re.compile(r"(?:mAP=|'Total':)\s*" + _V),
    "F1": re.compile(r"^\{[\"']exact_match[\"']:\s*[^,]+,\s*[\"']f1[\"']:\s*" + _V),
    "WER": re.compile(r"Word Error Rate:.*, accuracy=" + _V),
    "ACCURACY": re.compile(r"Word Error Rate:.*, accuracy=" + _V),
    "DICE": re.compile(r"Accuracy:\s*mean\s*=\s*" + _V),
    "ROUGE1": re.compile(r"'rouge1':\s+" + _V),
    "ROUGE2": re.compile(r"'rouge2':\s+" + _V),
    "ROUGEL": re.compile(r"'rougeL':\s+" + _V),
    "ROUGELSUM": re.compile(r"'rougeLsum':\s+" + _V),
    "GEN_LEN": re.compile(r"'gen_len':\s" + _V),
    "TOKENS_PER_SAMPLE": re.compile(r"'tokens_per_sample':\s" + _V),
    "CLIP_SCORE": re.compile(r"'CLIP_SCORE':\s+" + _V),
    "FID_SCORE": re.compile(r"'FID_SCORE':\s+" + _V),
    "gsm8k_accuracy": re.compile(r"'gsm8k':\s" + _V),
    "mbxp_accuracy": re.compile(r"'mbxp':\s" + _V),
    "exact_match": re.compile(r"'exact_match':\s" + _V),
}


def parse_accuracy(text: str | bytes) -> tuple[dict[str, float], list[tuple[int, str, str]]]:
    """(metric -> value, the first printing of each; bad lines as (line, metric, text)) of an accuracy.txt."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    found: dict[str, float] = {}
    bad: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for metric, pattern in _PATTERNS.items():
            match = pattern.search(line)
            if not match or metric in found:
                continue
            value = parse_number(match.group(1))
            if value is None:
                bad.append((number, metric, match.group(1)))
            else:
                found[metric] = float(value)
    return found, bad


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
