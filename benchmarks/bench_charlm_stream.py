"""Benchmark (h): greedy streaming on charlm fp32, the onnxruntime backend's run_stream vs a bare onnxruntime loop.

Same model file, same session options, same contexts (held-out windows of 64 characters) and
the same number of tokens; the bare loop calls session.run for the prefill, then once per
further token with the previous token and the state output, taking the argmax itself. Both
produce the same tokens (checked). Interleaved repeats, medians of the time per generated
token; ratio backend / bare (1.0 = the backend's streaming adds nothing).
Run: `.venv/bin/python benchmarks/bench_charlm_stream.py [--tokens 256]` (after `make models`).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort
from _ort_util import bare_session, fp32_model

from runner.backends.onnxruntime import OnnxRuntimeBackend, OnnxRuntimeSettings


def bare(session: ort.InferenceSession, contexts: np.ndarray, count: int) -> tuple[float, list[int]]:
    """Seconds per token of a bare prefill + decode loop over every context; the tokens generated."""
    names, tokens = ["logits", "state_out"], []
    start = time.perf_counter()
    for context in contexts:
        logits, state = session.run(names, {"tokens": context[None], "state": np.zeros((1, 128), np.float32)})
        for i in range(count):
            token = np.array([[logits[0, -1].argmax()]], dtype=np.int64)
            tokens.append(int(token[0, 0]))
            if i + 1 < count:
                logits, state = session.run(names, {"tokens": token, "state": state})
    return (time.perf_counter() - start) / (len(contexts) * count), tokens


def backend_stream(backend: OnnxRuntimeBackend, contexts: np.ndarray, count: int) -> tuple[float, list[int]]:
    """Seconds per token of backend.run_stream over every context; the tokens generated."""
    tokens, n = [], np.array([count], np.int64)
    start = time.perf_counter()
    for context in contexts:
        for item in backend.run_stream({"tokens": context[None], "max_new_tokens": n}):
            tokens.append(int(item[0][0]))
    return (time.perf_counter() - start) / (len(contexts) * count), tokens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256, help="tokens generated per context")
    parser.add_argument("--contexts", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    task, card, path = fp32_model("charlm")
    contexts = task.windows()[:args.contexts]
    backend = OnnxRuntimeBackend(OnnxRuntimeSettings(intra_op_threads=args.threads))
    backend.prepare(card, path)
    session = bare_session(path, args.threads)  # the backend's defaults: these threads, sequential, every optimisation
    bare(session, contexts[:2], 8), backend_stream(backend, contexts[:2], 8)  # warm-up
    ours, base = [], []
    for _ in range(args.repeats):
        t_ours, tokens_ours = backend_stream(backend, contexts, args.tokens)
        t_bare, tokens_bare = bare(session, contexts, args.tokens)
        assert tokens_ours == tokens_bare, "run_stream and the bare loop generated different tokens"
        ours.append(t_ours)
        base.append(t_bare)
    a, b = float(np.median(ours)), float(np.median(base))
    print(f"charlm fp32 greedy streaming, {args.contexts} contexts of 64 characters x {args.tokens} tokens, "
          f"{args.threads} thread(s), median of {args.repeats}")
    print(f"run_stream {a * 1e6:.1f} us/token   bare onnxruntime loop {b * 1e6:.1f} us/token   ratio {a / b:.3f}")


if __name__ == "__main__":
    main()
