"""Benchmark (g): the interactive scenario's own overhead per generated token (issue 3: < 20 us).

The null backend returns every token at once, so the wall time of the scenario's timed streaming
loop divided by the tokens it generated is the runner's cost per token: the conversation source,
context building in the system under test, per-token timestamps and callbacks, per-request
records. The baseline, measured in the same run, is a bare Python loop over the same null
generator (`for _ in backend.run_stream(...)`), the least any consumer of the stream pays.
Run: `.venv/bin/python benchmarks/bench_interactive.py [--duration-ms 2000]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _loadgen_util import null_card

from runner.backends.null import NullBackend
from runner.scenarios.interactive import Interactive, InteractiveSettings
from runner.sut import BackendSUT
from runner.task import ArraySampleLibrary

PROMPT, SAMPLES, BUDGET_US = 64, 1024, 20.0


def _setup() -> tuple[NullBackend, ArraySampleLibrary]:
    card = null_card(inputs=[{"name": "tokens", "dtype": "int64", "shape": ["batch", PROMPT]}],
                     outputs=[{"name": "logits", "dtype": "float32", "shape": ["batch", PROMPT, 96]}],
                     operators=("Gather",))
    backend = NullBackend()
    backend.prepare(card, None)
    tokens = np.random.default_rng(0).integers(1, 96, size=(SAMPLES, PROMPT), dtype=np.int64)
    return backend, ArraySampleLibrary({"tokens": tokens}, SAMPLES, name="null-prompts")


def runner_us_per_token(backend: NullBackend, qsl: ArraySampleLibrary, tokens: int, concurrency: int,
                        duration_ms: int) -> tuple[float, int]:
    """(wall time of the timed streaming loop / tokens generated in it, tokens) for the interactive scenario."""
    s = InteractiveSettings(min_duration_ms=duration_ms, warmup_duration_ms=200, min_query_count=1,
                            concurrency=concurrency, min_turns=1, max_turns=4, min_output_tokens=tokens,
                            max_output_tokens=tokens, max_context_tokens=4 * PROMPT + 3 * tokens)
    summary = Interactive(s).run(BackendSUT(backend, qsl), qsl).summary
    return summary["duration_ns"] / 1e3 / summary["output_tokens"], summary["output_tokens"]


def bare_us_per_token(backend: NullBackend, tokens: int, total: int) -> float:
    """A bare Python loop over the same null generator, `total` tokens in streams of `tokens`."""
    inputs = {"tokens": np.zeros((1, PROMPT), dtype=np.int64), "max_new_tokens": np.array([tokens], dtype=np.int64)}
    streams = max(total // tokens, 1)
    start = time.perf_counter_ns()
    for _ in range(streams):
        for _ in backend.run_stream(inputs):
            pass
    return (time.perf_counter_ns() - start) / 1e3 / (streams * tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-ms", type=int, default=2_000, help="Timed part of each interactive run.")
    args = parser.parse_args()
    backend, qsl = _setup()
    print(f"{'tokens/turn':>11} {'threads':>7} {'runner us/token':>15} {'bare loop us/token':>18} "
          f"{'ratio':>7} {'overhead us/token':>17}  verdict (< {BUDGET_US:g} us)")
    for tokens in (16, 128):
        for concurrency in (1, 4):
            ours, total = runner_us_per_token(backend, qsl, tokens, concurrency, args.duration_ms)
            bare = bare_us_per_token(backend, tokens, total)
            verdict = "ok" if ours < BUDGET_US else "OVER"
            print(f"{tokens:>11} {concurrency:>7} {ours:>15.3f} {bare:>18.3f} {ours / bare:>7.1f} "
                  f"{ours - bare:>17.3f}  {verdict}")


if __name__ == "__main__":
    main()
