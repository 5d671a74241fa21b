"""What infersight knows about each MLPerf Inference benchmark: task facts and headline rules.

Figures follow MLCommons' submission checker for v4.0 and v4.1 (accuracy targets, datasets,
performance sample counts, server latency bounds, compliance tests, headline fields). A model
folder names a benchmark plus an accuracy class: "bert-99.9" is benchmark "bert" at 99.9% of
the reference quality; "resnet50" and "retinanet" are at 99%; "stable-diffusion-xl" has
absolute bounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Benchmark", "BENCHMARKS", "SCENARIOS", "benchmark_of", "accuracy_fraction", "headline_field",
           "HEADLINE_FIELDS", "round_number"]

# Folder name (case-insensitive) -> our scenario name. Interactive (v5.x) is a Server run whose
# summary says "Scenario : Server".
SCENARIOS = {"offline": "offline", "server": "server", "singlestream": "single_stream",
             "multistream": "multi_stream", "interactive": "interactive"}


@dataclass(frozen=True)
class Benchmark:
    """Facts of one benchmark, the same for every system (they make the imported task card)."""

    name: str
    category: str
    description: str
    dataset: str
    dataset_samples: int
    performance_sample_count: int
    quality_metric: str
    quality_targets: tuple[tuple[str, float], ...]  # (metric, reference value); target = fraction x value
    absolute_targets: tuple[tuple[str, float, float | None], ...] = ()  # (metric, low, high or None)
    server_latency_ms: float | None = None
    tokens: str = ""  # "", "tokens" (logged) or "inferred" (samples x tokens per sample)
    compliance_tests: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ("offline", "server")


_LLM_TESTS = ("TEST06",)
_VISION_TESTS = ("TEST01", "TEST04", "TEST05")
_ALL = ("offline", "server", "single_stream", "multi_stream")
_SS_OFF_SRV = ("offline", "server", "single_stream")
_LLAMA2_QUALITY = (("ROUGE1", 44.4312), ("ROUGE2", 22.0352), ("ROUGEL", 28.6162))
_LLAMA2_TOKENS = (("TOKENS_PER_SAMPLE", 294.45 * 0.9, 294.45 * 1.1),)

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    Benchmark("resnet50", "image_classification", "ResNet-50 v1.5 image classification", "ImageNet 2012 validation",
              50000, 1024, "acc", (("acc", 76.46),), server_latency_ms=15, compliance_tests=_VISION_TESTS,
              scenarios=_ALL),
    Benchmark("retinanet", "object_detection", "RetinaNet object detection", "OpenImages (MLPerf subset)",
              24781, 64, "mAP", (("mAP", 37.55),), server_latency_ms=100, compliance_tests=("TEST01", "TEST05"),
              scenarios=_ALL),
    Benchmark("bert", "language_model", "BERT-Large question answering", "SQuAD v1.1 dev", 10833, 10833,
              "F1", (("F1", 90.874),), server_latency_ms=130, compliance_tests=("TEST01", "TEST05"),
              scenarios=_SS_OFF_SRV),
    Benchmark("dlrm-v2", "recommendation", "DLRM v2 click-through prediction", "Criteo 1TB click logs (day 23)",
              89137319, 204800, "AUC", (("AUC", 80.31),), server_latency_ms=60,
              compliance_tests=("TEST01", "TEST05")),
    Benchmark("3d-unet", "other", "3D U-Net medical image segmentation", "KiTS19", 43, 43, "DICE",
              (("DICE", 0.86170),), compliance_tests=("TEST01", "TEST05"),
              scenarios=("offline", "single_stream")),
    Benchmark("rnnt", "speech", "RNN-T speech recognition", "LibriSpeech dev-clean", 2513, 2513, "WER",
              (("WER", 100 - 7.452),), server_latency_ms=1000, compliance_tests=("TEST01", "TEST05"),
              scenarios=_SS_OFF_SRV),
    Benchmark("gptj", "text_generation", "GPT-J 6B summarisation", "CNN-DailyMail", 13368, 13368, "ROUGE1",
              (("ROUGE1", 42.9865), ("ROUGE2", 20.1235), ("ROUGEL", 29.9881)),
              (("GEN_LEN", 4016878 * 0.9, None),), server_latency_ms=20000, tokens="inferred",
              scenarios=_SS_OFF_SRV),
    Benchmark("llama2-70b", "text_generation", "Llama 2 70B chat", "OpenOrca (MLPerf subset)", 24576, 24576,
              "ROUGE1", _LLAMA2_QUALITY, _LLAMA2_TOKENS, tokens="tokens", compliance_tests=_LLM_TESTS,
              scenarios=("offline", "server", "interactive")),
    Benchmark("llama2-70b-interactive", "text_generation", "Llama 2 70B chat, interactive latency bounds",
              "OpenOrca (MLPerf subset)", 24576, 24576, "ROUGE1", _LLAMA2_QUALITY, _LLAMA2_TOKENS, tokens="tokens",
              compliance_tests=_LLM_TESTS, scenarios=("offline", "server", "interactive")),
    Benchmark("mixtral-8x7b", "text_generation", "Mixtral 8x7B (OpenOrca, GSM8K, MBXP)",
              "OpenOrca, GSM8K and MBXP (MLPerf mix)", 15000, 15000, "ROUGE1",
              (("ROUGE1", 45.4911), ("ROUGE2", 23.2829), ("ROUGEL", 30.3615), ("gsm8k_accuracy", 73.78),
               ("mbxp_accuracy", 60.12)), (("TOKENS_PER_SAMPLE", 145.9 * 0.9, 145.9 * 1.1),), tokens="tokens",
              compliance_tests=_LLM_TESTS, scenarios=_SS_OFF_SRV),
    Benchmark("stable-diffusion-xl", "other", "Stable Diffusion XL text to image", "COCO 2014 captions (MLPerf subset)",
              5000, 5000, "CLIP_SCORE", (),
              (("CLIP_SCORE", 31.68631873, 31.81331801), ("FID_SCORE", 23.01085758, 23.95007626)),
              server_latency_ms=20000, compliance_tests=("TEST01", "TEST04"), scenarios=_SS_OFF_SRV),
)}

_ALIASES = {"resnet": "resnet50", "resnet50": "resnet50"}
_CLASS = re.compile(r"^(?P<name>.+?)-(?P<cls>99\.9|99)$")


def benchmark_of(model: str) -> tuple[Benchmark, str] | None:
    """(benchmark, accuracy class "99"/"99.9"/"") of a results model folder, or None if unknown."""
    name = model.strip().lower()
    match = _CLASS.match(name)
    base, cls = (match.group("name"), match.group("cls")) if match else (name, "")
    base = _ALIASES.get(base, base)
    if base not in BENCHMARKS:
        return None
    return BENCHMARKS[base], cls


def accuracy_fraction(benchmark: Benchmark, cls: str) -> float | None:
    """The fraction of the reference quality a model must reach (None: absolute bounds only)."""
    if cls == "99.9":
        return 0.999
    return 0.99 if benchmark.quality_targets else None


def round_number(round_name: str) -> tuple[int, int]:
    """'v4.1' -> (4, 1); unknown spellings sort as the newest round."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)", round_name.strip().lower())
    return (int(match.group(1)), int(match.group(2))) if match else (99, 0)


# Detail-log field -> (summary label, units kind). Units kinds: "samples", "queries", "tokens".
HEADLINE_FIELDS = {
    "result_samples_per_second": ("samples per second", "samples"),
    "result_scheduled_samples_per_sec": ("scheduled samples per second", "queries"),
    "result_completed_samples_per_sec": ("completed samples per second", "queries"),
    "result_tokens_per_second": ("tokens per second", "tokens"),
    "result_completed_tokens_per_second": ("completed tokens per second", "tokens"),
    "result_inferred_tokens_per_second": ("tokens per second (inferred)", "tokens"),
    "result_inferred_completed_tokens_per_second": ("completed tokens per second (inferred)", "tokens"),
    "early_stopping_latency_ss": ("90", "latency"),
    "early_stopping_latency_ms": ("99", "latency"),
}


def headline_field(benchmark: Benchmark, scenario: str, round_name: str) -> str:
    """The detail-log field holding the official headline of a result (our scenario name)."""
    if scenario == "single_stream":
        return "early_stopping_latency_ss"
    if scenario == "multi_stream":
        return "early_stopping_latency_ms"
    old = round_number(round_name) <= (4, 0)
    if scenario == "offline":
        if benchmark.tokens == "tokens" or (benchmark.tokens == "inferred" and not old):
            return "result_tokens_per_second" if benchmark.tokens == "tokens" else "result_inferred_tokens_per_second"
        return "result_samples_per_second"
    if benchmark.tokens == "tokens" and not old:
        return "result_completed_tokens_per_second"
    if benchmark.tokens == "inferred" and not old:
        return "result_inferred_completed_tokens_per_second"
    if benchmark.tokens == "tokens":  # v4.0 llama2 servers: completed samples
        return "result_completed_samples_per_sec"
    return "result_scheduled_samples_per_sec" if old else "result_completed_samples_per_sec"
