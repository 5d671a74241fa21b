"""Build the model files of the `charlm` task: a character-level GRU language model trained in numpy on
CPython's pydoc_data help text, exported to ONNX (fp32) and quantized to int8 with onnxruntime's dynamic
quantizer. Each file gets a model card beside it, with the generation spec that says how to stream it.

    python -m tasks.charlm.build_model --out tasks/charlm/models [--steps N] [--seed S] [--quiet]

The graph takes `tokens` int64 [batch, time] and `state` float32 [batch, hidden] and gives `logits`
float32 [batch, time, vocab] and `state_out` [batch, hidden]: the same graph scores a whole window
(prefill) and takes one generation step (time = 1), with the state fed back.
The build is deterministic: the same seed on the same machine gives byte-identical files
(fixed RNG, fixed batch order, BLAS on one thread while training, no timestamps in the files).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from threadpoolctl import threadpool_limits

from runner.cards.model import ModelCard
from tasks._build import finish_quantized, install, log, model_card, quiet_quantizer, run_main, session, write_card
from tasks.charlm._corpus import (SPLIT_SEED, TEST_FRACTION, VOCAB_SIZE, bits_per_char, corpus_source, load_split,
                                  text_sha256, windows)
from tasks.charlm._numpy_gru import CLIP_NORM, EMBED, HIDDEN, forward, init_params, train

__all__ = ["to_onnx", "quantize", "run_onnx", "check_export", "build", "main",
           "WINDOWS", "WINDOW", "GENERATION"]

SCRIPT = "tasks/charlm/build_model.py"
PRODUCER = "infersight-charlm-build"
TASK, TASK_VERSION, MODEL_NAME = "charlm", "1.0.0", "charlm-gru"
OPSET, IR_VERSION = 17, 8
TOKENS, STATE, LOGITS, STATE_OUT = "tokens", "state", "logits", "state_out"
DEFAULT_STEPS = 1200
BATCH, SEQ_LEN, LEARNING_RATE = 32, 64, 5e-3
WINDOWS, WINDOW = 512, 64  # held-out windows scored for the reference quality (the task's samples)
VARIANTS = ("fp32", "int8")
GENERATION = {"token_input": TOKENS, "logits_output": LOGITS, "state": [{"input": STATE, "output": STATE_OUT}],
              "vocab_size": VOCAB_SIZE}
QUANT_PARAMETERS = {"quantizer": "onnxruntime quantize_dynamic", "quantized_operators": "Gather,MatMul",
                    "weight_type": "QInt8", "per_channel": False, "fp32_operators": "GRU"}


# ------------------------------------------------------------------------------------------- export

def to_onnx(p: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Standard ai.onnx graph (Gather, Transpose, Unsqueeze, GRU, Squeeze, MatMul, Add), opset 17."""
    hid = p["R"].shape[1]
    inits = [numpy_helper.from_array(v, n) for n, v in (
        ("emb", p["emb"]), ("gru.W", p["W"][None]), ("gru.R", p["R"][None]),
        ("gru.B", np.concatenate([p["Wb"], p["Rb"]])[None]), ("out.W", p["Wo"]), ("out.b", p["bo"]),
        ("axis0", np.array([0], np.int64)), ("axis1", np.array([1], np.int64)))]
    node = helper.make_node
    nodes = [
        node("Gather", ["emb", TOKENS], ["embedded"], name="embedding"),                  # [B, T, E]
        node("Transpose", ["embedded"], ["x"], perm=[1, 0, 2], name="to_time_major"),      # [T, B, E]
        node("Unsqueeze", [STATE, "axis0"], ["h0"], name="state_in"),                      # [1, B, H]
        node("GRU", ["x", "gru.W", "gru.R", "gru.B", "", "h0"], ["y", "y_h"], name="gru", hidden_size=hid,
             linear_before_reset=1),
        node("Squeeze", ["y", "axis1"], ["y_tbh"], name="drop_direction"),                  # [T, B, H]
        node("Transpose", ["y_tbh"], ["hidden"], perm=[1, 0, 2], name="to_batch_major"),   # [B, T, H]
        node("MatMul", ["hidden", "out.W"], ["projected"], name="output"),
        node("Add", ["projected", "out.b"], [LOGITS], name="output_bias"),
        node("Squeeze", ["y_h", "axis0"], [STATE_OUT], name="state_out"),
    ]
    graph = helper.make_graph(
        nodes, "charlm_gru",
        [helper.make_tensor_value_info(TOKENS, TensorProto.INT64, ["batch", "time"]),
         helper.make_tensor_value_info(STATE, TensorProto.FLOAT, ["batch", hid])],
        [helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["batch", "time", VOCAB_SIZE]),
         helper.make_tensor_value_info(STATE_OUT, TensorProto.FLOAT, ["batch", hid])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
                              producer_version=TASK_VERSION, ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def quantize(fp32_path: Path, int8_path: Path) -> None:
    """Dynamic int8 of the embedding (Gather) and the output projection (MatMul); the GRU stays fp32
    (onnxruntime's quantizer has no integer GRU). Weights int8, activations quantized at run time."""
    with quiet_quantizer():
        quantize_dynamic(fp32_path, int8_path, op_types_to_quantize=["Gather", "MatMul"], per_channel=False,
                         weight_type=QuantType.QInt8)
    finish_quantized(int8_path, producer=PRODUCER, version=TASK_VERSION, ir_version=IR_VERSION)


# ------------------------------------------------------------------------------------------ quality

def run_onnx(path: Path, tokens: np.ndarray, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(logits, state_out) of an ONNX file in onnxruntime (CPU, one thread); zero state when none is given."""
    sess = session(path)
    hid = sess.get_inputs()[1].shape[1]
    state = np.zeros((len(tokens), hid), np.float32) if state is None else state
    logits, state_out = sess.run([LOGITS, STATE_OUT], {TOKENS: tokens, STATE: state})
    return logits, state_out


def check_export(p: dict[str, np.ndarray], path: Path, tokens: np.ndarray) -> None:
    """The exported graph must compute what the numpy network computes (logits and final state)."""
    state = np.zeros((len(tokens), p["R"].shape[1]), np.float32)
    expected_logits, expected_state, _ = forward(p, tokens, state)
    got_logits, got_state = run_onnx(path, tokens, state)
    for name, got, expected in (("logits", got_logits, expected_logits), ("state_out", got_state, expected_state)):
        if not np.allclose(got, expected, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(expected).max()))):
            raise RuntimeError(f"ONNX export differs from the numpy network in {name} by "
                               f"{np.abs(got - expected).max():.3g}")


# --------------------------------------------------------------------------------------------- cards

def make_card(path: Path, variant: str, *, build_info: dict[str, Any], quality: float, fp32_quality: float,
              samples: int) -> ModelCard:
    return model_card(path, variant, task=TASK, task_version=TASK_VERSION, name=MODEL_NAME, build_info=build_info,
                      reference_quality={"metric": "bits_per_char", "value": quality, "samples": samples,
                                         "fp32_reference": fp32_quality},
                      inputs=[{"name": TOKENS, "dtype": "int64", "shape": ["batch", "time"]},
                              {"name": STATE, "dtype": "float32", "shape": ["batch", HIDDEN]}],
                      outputs=[{"name": LOGITS, "dtype": "float32", "shape": ["batch", "time", VOCAB_SIZE]},
                               {"name": STATE_OUT, "dtype": "float32", "shape": ["batch", HIDDEN]}],
                      generation=GENERATION)


def tool_versions() -> dict[str, str]:
    return {"numpy": np.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
            "python": sys.version.split()[0]}


# --------------------------------------------------------------------------------------------- build

def build(out_dir: Path, *, steps: int = DEFAULT_STEPS, seed: int = 20261201, progress: bool = True) -> dict[str, Path]:
    """Train, export, quantize, evaluate and write charlm-<variant>.onnx and its card for every variant.

    `seed` drives initialisation; the text split is always load_split()'s and the training order is fixed.
    Files are written into a temporary folder inside out_dir and renamed into place at the end,
    models before cards, so an interrupted build never leaves a half-written file. Returns variant -> card.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_ids, test_ids = load_split()
    heldout = windows(test_ids, WINDOWS, WINDOW)
    params = init_params(np.random.default_rng(seed), VOCAB_SIZE)
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        train(params, train_ids, steps=steps, batch=BATCH, seq_len=SEQ_LEN, lr=LEARNING_RATE, progress=progress)
    log(progress, f"trained in {time.perf_counter() - started:.1f}s")
    corpus = {"train_sha256": text_sha256(train_ids), "heldout_sha256": text_sha256(test_ids)}
    with tempfile.TemporaryDirectory(prefix=".build-", dir=out_dir) as tmp:
        paths = {v: Path(tmp) / f"charlm-{v}.onnx" for v in VARIANTS}
        onnx.save(to_onnx(params), paths["fp32"])
        check_export(params, paths["fp32"], heldout[:64])
        quantize(paths["fp32"], paths["int8"])
        scores = {v: float(bits_per_char(run_onnx(p, heldout)[0], heldout).mean()) for v, p in paths.items()}
        cards = {}
        for variant, path in paths.items():
            card = make_card(path, variant, build_info=_build_info(variant, seed, steps, corpus),
                             quality=scores[variant], fp32_quality=scores["fp32"], samples=WINDOWS)
            cards[variant] = write_card(card, path)
            log(progress, f"{variant}: {scores[variant]:.4f} bits/char on {WINDOWS} held-out windows of "
                           f"{WINDOW} characters, {card.size_bytes} bytes, sha256 {card.sha256[:16]}")
        return install(paths, cards, out_dir)


def _build_info(variant: str, seed: int, steps: int, corpus: dict[str, str]) -> dict[str, Any]:
    parameters = {"steps": steps, "batch_size": BATCH, "bptt_length": SEQ_LEN, "learning_rate": LEARNING_RATE,
                  "lr_schedule": "cosine", "optimizer": "adam", "gradient_clip_norm": CLIP_NORM,
                  "architecture": f"embedding{EMBED}-gru{HIDDEN}-linear{VOCAB_SIZE}", "vocab_size": VOCAB_SIZE,
                  "corpus": corpus_source(), "split_seed": SPLIT_SEED, "test_fraction": TEST_FRACTION,
                  "heldout_windows": WINDOWS, "window_length": WINDOW, **corpus}
    if variant == "int8":
        parameters.update(QUANT_PARAMETERS)
    return {"script": SCRIPT, "seed": seed, "parameters": parameters, "tool_versions": tool_versions()}


def main(argv: list[str] | None = None) -> int:
    return run_main(argv, task="charlm", doc=__doc__, build=build,
                    count=("steps", DEFAULT_STEPS, "training steps (truncated BPTT chunks)"),
                    seed=(20261201, "seed of initialisation"))


if __name__ == "__main__":
    sys.exit(main())
