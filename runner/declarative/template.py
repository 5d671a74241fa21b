"""The text of a scaffolded declarative task card: every field with a comment saying what it is."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["card_text"]


def _q(value: Any) -> str:
    """A YAML scalar (JSON is valid YAML for strings, numbers and booleans)."""
    return json.dumps(value, ensure_ascii=False)


def _inputs(inputs: dict[str, str | list[str]]) -> str:
    if not inputs:
        return "    inputs: {}  # model input -> npz key, table column or list of columns; {}: by the input's name\n"
    lines = "".join(f"      {_q(name)}: {_q(source)}\n" for name, source in inputs.items())
    return "    inputs:  # model input -> npz key, table column or list of columns (stacked on the last axis)\n" + lines


def _references(ref: dict[str, Any]) -> str:
    key, value = next(iter(ref.items()))
    extra = "".join(f"    {k}: {_q(v)}\n" for k, v in list(ref.items())[1:])
    return f"    {key}: {_q(value)}\n{extra}"


def card_text(f: dict[str, Any]) -> str:
    """The task.yaml of a new declarative task; `f` holds the values (see runner/declarative/scaffold.py)."""
    target_line = (f"      fraction_of_reference: {f['target_value']}  # target = this x the fp32 model's own quality"
                   if f["target_kind"] == "fraction" else
                   f"      absolute: {f['target_value']}  # the metric must reach this value")
    int8 = ("  int8:  # an int8 variant, made by onnxruntime's quantize_static (run: --model-variant int8)\n"
            "    calibration_samples: 128  # the first samples of the data calibrate the activations\n"
            "    format: QDQ  # QDQ or QOperator\n"
            "    per_channel: false  # quantize weights per output channel\n") if f["int8"] else (
            "  # int8:  # uncomment for an int8 variant made by onnxruntime's quantize_static\n"
            "  #   calibration_samples: 128\n")
    pins = (f"  fp32:\n    file: {_q(f['model_file'])}  # under models/ beside this card\n"
            f"    sha256: {f['model_sha256']}  # a file with other bytes is refused\n"
            f"    source: {_q(f['model_source'])}\n    license: {_q(f['license'])}\n")
    if f["int8_sha256"]:
        pins += (f"  int8:\n    file: {_q(f['int8_file'])}\n    sha256: {f['int8_sha256']}\n"
                 f"    source: \"quantize_static of fp32 (declarative.int8)\"\n    license: {_q(f['license'])}\n")
    return f"""\
# Task card of `{f['name']}`, scaffolded by `infersight task new`. Format: runner/cards/task.py and
# runner/cards/declarative.py (card_version 1). Run it: infersight run {f['card_hint']} --scenario offline
card_version: 1  # format version of this card
metadata:
  name: {f['name']}  # task name, as used on the command line and in the store
  version: 1.0.0  # semantic version: raise the major number when results stop being comparable
  description: {_q(f['description'])}
  # category: image_classification, object_detection, text_generation, language_model, speech, recommendation
  # or other
  category: {f['category']}
data:
  datasets:  # what the samples are (for the record; the declarative section says how to read them)
    - name: {_q(f['data_name'])}
      source: {_q(f['data_source'])}
      samples: {f['samples']}  # number of samples in the data
      license: {_q(f['license'])}
  split: null  # the data is used as given (no train/test split here)
  sampling:
    performance_sample_count: {f['perf_count']}  # samples held in memory for performance runs
    accuracy_samples: all  # the accuracy pass scores every sample
metrics:
  quality:
    # a scikit-learn metric: accuracy, balanced_accuracy, top_k_accuracy, f1, precision, recall, mse, mae, r2
    metric: {f['metric']}
    target:
{target_line}
    higher_is_better: {str(f['higher_is_better']).lower()}  # must match the metric
  performance: [latency_p50_ms, latency_p90_ms, latency_p99_ms, samples_per_second]
scenarios:  # the scenarios this task runs under, each with overrides of its settings
  single_stream: {{}}  # one sample per query; headline p90 latency
  multi_stream:
    samples_per_query: 8  # samples in each query
  offline: {{}}  # every sample in one query; headline samples/s
  server:  # Poisson arrivals
    target_qps: {f['target_qps']}  # queries per second (a first guess; `infersight peak` finds the highest VALID one)
    latency_bound_ms: {f['latency_bound_ms']}  # bound on p99 latency
constraints: {{}}  # optional bounds: max_latency_p90_ms, max_latency_p99_ms, server_latency_bound_ms
models:  # each variant's model file, pinned by sha256 (as MLPerf pins its reference models)
{pins}declarative:  # the task needs no Python: data, references and scoring
  data:
    file: {_q(f['data_file'])}  # .npz, .npy, .csv, .parquet or a folder of images, relative to this card
    # sha256 of the data file: other bytes are refused (null: not checked)
    sha256: {_q(f['data_sha256']) if f['data_sha256'] else 'null'}
{_inputs(f['inputs'])}  # the right answers, one per sample: key (npz), column (table), file (+ column) or subfolders
  references:
{_references(f['references'])}  output: {_q(f['output'])}  # the model output that is scored
  # options of the metric: top_k_accuracy: k; f1, precision, recall: average (micro, macro, weighted)
  metric_options: {_q(f['metric_options'])}
{int8}"""
