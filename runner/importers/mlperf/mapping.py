"""Open-division results under a custom model name, mapped to the closed benchmark they are ranked with.

MLCommons' checker reads `<division>/<Submitter>/model_mapping.json` (folder name -> benchmark, e.g.
"llama3_1-70b-fp8_dyn": "llama2-70b-99.9"); that file decides where a tree has it. Copies trimmed of
it still show which benchmark ran: the LoadGen QSL size (`qsl_reported_total_count`) names the
dataset, so an open result whose dataset matches exactly one benchmark of the round is mapped to it,
in the strictest accuracy class its accuracy.txt meets (as MLCommons' table lists such results; open
results need not meet any: then the loosest class, whose accuracy verdict reads failed). The
mapping and how it was found are kept on the run (`model_mapping` in its summary); the custom model
name stays the run's model variant.
"""

from __future__ import annotations

from typing import Any

from runner.errors import CardError
from runner.importers.mlperf._numbers import as_number
from runner.importers.mlperf.accuracy import judge_accuracy, parse_accuracy
from runner.importers.mlperf.benchmarks import Benchmark, benchmark, benchmark_of
from runner.importers.mlperf.detail import DetailLog
from runner.importers.mlperf.rules import rules_for
from runner.importers.mlperf.tree import ResultFolder
from runner.loading import read_published_json

__all__ = ["map_model"]


def map_model(result: ResultFolder, round_name: str, summary: dict[str, Any],
              detail: DetailLog | None) -> tuple[Benchmark, str] | None:
    """(benchmark, class) of a model folder the round's table does not name, or None if it cannot be told."""
    mapped = _from_mapping_file(result)
    if mapped:
        return benchmark_of(mapped, round_name)
    if result.division != "open":
        return None
    return _from_dataset(result, round_name, summary, detail)


def _from_mapping_file(result: ResultFolder) -> str | None:
    path = result.submitter_dir / "model_mapping.json"
    try:
        data = read_published_json(path)
    except CardError:
        return None
    value = data.get(result.model) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _from_dataset(result: ResultFolder, round_name: str, summary: dict[str, Any],
                  detail: DetailLog | None) -> tuple[Benchmark, str] | None:
    size = as_number(detail.get("qsl_reported_total_count")) if detail is not None else None
    if not size:
        return None
    rules = rules_for(round_name)
    names = [name for name in rules.benchmarks if benchmark(name, round_name).dataset_samples == size]
    if len(names) != 1:
        return None
    bench = benchmark(names[0], round_name)
    try:
        figures = parse_accuracy(result.accuracy.read_bytes())[0]
    except OSError:
        figures = {}
    ordered = sorted(bench.classes.items(), key=lambda item: -(item[1] or 0))
    for cls, fraction in ordered:
        if judge_accuracy(bench, fraction, figures)["passed"]:
            return bench, cls
    return bench, ordered[-1][0]  # open results need not reach a target: the loosest class, judged failed
