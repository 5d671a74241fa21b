"""Greedy streaming generation for backends that run a model one step at a time (onnxruntime, openvino).

The model card's generation spec (runner/cards/model.py GenerationSpec) says how: the whole
context goes through the model once (prefill) with every state input at zero; then each
generated token is fed back alone, with the state outputs of the step before as the state
inputs. Called on the load generator's thread; each `next()` blocks for one model step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from runner.cards import ModelCard
from runner.cards.model import GenerationSpec
from runner.errors import BackendError

__all__ = ["Step", "stream_request", "greedy_stream"]

Step = Callable[[dict[str, np.ndarray]], list[np.ndarray]]
"""Runs the model once on these feeds; returns [logits, *state outputs] in the generation spec's order."""


def stream_request(backend: str, model: ModelCard | None,
                   inputs: Mapping[str, np.ndarray]) -> tuple[GenerationSpec, dict[str, np.ndarray], int]:
    """Check a run_stream request; return (spec, prefill feeds, max_new_tokens). Raises BackendError.

    `inputs` holds one sequence: "tokens" int [1, L] (L >= 1, the whole context) and
    "max_new_tokens" int [1] (>= 0).
    """
    if model is None:
        raise BackendError(f"backend {backend!r}: run_stream before prepare (no model loaded)")
    spec = model.generation
    if spec is None:
        raise BackendError(f"backend {backend!r} cannot stream model {model.name!r} ({model.task} {model.variant}): "
                           f"its model card has no generation spec (only generative models stream)")
    missing = [k for k in ("tokens", "max_new_tokens") if k not in inputs]
    if missing:
        raise BackendError(f"backend {backend!r}: run_stream needs inputs 'tokens' and 'max_new_tokens'; "
                           f"missing {', '.join(missing)}")
    tokens = np.asarray(inputs["tokens"])
    if tokens.ndim != 2 or tokens.shape[0] != 1 or tokens.shape[1] < 1 or tokens.dtype.kind not in "iu":
        raise BackendError(f"backend {backend!r}: run_stream takes one sequence of token ids shaped [1, L >= 1], "
                           f"got {tokens.dtype} {list(tokens.shape)}")
    count = np.asarray(inputs["max_new_tokens"]).reshape(-1)
    if count.size != 1 or count.dtype.kind not in "iu" or int(count[0]) < 0:
        raise BackendError(f"backend {backend!r}: max_new_tokens must be one integer >= 0, got {count.tolist()}")
    feeds = {spec.token_input: tokens.astype(np.int64, copy=False), **_zero_state(model, spec)}
    return spec, feeds, int(count[0])


def _zero_state(model: ModelCard, spec: GenerationSpec) -> dict[str, np.ndarray]:
    """Each state input at zero, shaped as the model card declares it with every named dimension 1."""
    inputs = {t.name: t for t in model.inputs}
    return {p.input: np.zeros([d if isinstance(d, int) else 1 for d in inputs[p.input].shape],
                              dtype=inputs[p.input].dtype) for p in spec.state}


def greedy_stream(step: Step, spec: GenerationSpec, feeds: dict[str, np.ndarray], count: int
                  ) -> Iterator[list[np.ndarray]]:
    """Yield `count` items [token id int64 (1,)]: prefill on the first next(), then one model step per token."""
    if count == 0:
        return
    token_input, state_inputs = spec.token_input, [p.input for p in spec.state]
    outputs = step(feeds)
    feeds = dict(feeds)  # from here on: the last token and the state, updated in place
    for produced in range(1, count + 1):
        token = np.array([outputs[0][0, -1].argmax()], dtype=np.int64)
        yield [token]
        if produced == count:
            return
        feeds[token_input] = token.reshape(1, 1)
        for name, value in zip(state_inputs, outputs[1:]):
            feeds[name] = value
        outputs = step(feeds)
