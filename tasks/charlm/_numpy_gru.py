"""A character-level GRU language model in pure numpy: forward, backward, Adam, truncated BPTT.

Embedding -> one GRU layer -> linear output, with the gates laid out as the ONNX `GRU` operator
has them (order z, r, h; linear_before_reset=1), so the weights export as they are:

    z = sigmoid(x Wz + Wbz + h Rz + Rbz)       r = sigmoid(x Wr + Wbr + h Rr + Rbr)
    n = tanh(x Wh + Wbh + r * (h Rh + Rbh))    h' = (1 - z) * n + z * h

Arrays keep the dtype of the parameters (float32 for training, float64 in the gradient check).
Training is deterministic for a given seed when BLAS runs on one thread (the caller limits it).
"""

from __future__ import annotations

import sys
import time

import numpy as np

__all__ = ["EMBED", "HIDDEN", "CLIP_NORM", "init_params", "forward", "backward", "loss_and_grads", "Adam", "train"]

EMBED, HIDDEN = 32, 128
CLIP_NORM = 5.0
F32 = np.float32


def init_params(rng: np.random.Generator, vocab: int, embed: int = EMBED, hidden: int = HIDDEN) -> dict[str, np.ndarray]:
    """Embedding N(0, 1); GRU and output weights uniform(+-1/sqrt(hidden)) (PyTorch's GRU and Linear bounds);
    biases 0. Drawn in a fixed order from `rng`."""
    bound = 1.0 / np.sqrt(hidden)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-bound, bound, shape).astype(F32)

    return {"emb": rng.standard_normal((vocab, embed)).astype(F32),
            "W": uniform(3 * hidden, embed), "R": uniform(3 * hidden, hidden),
            "Wb": np.zeros(3 * hidden, F32), "Rb": np.zeros(3 * hidden, F32),
            "Wo": uniform(hidden, vocab), "bo": np.zeros(vocab, F32)}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def forward(p: dict[str, np.ndarray], tokens: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Logits [B, T, V], the last state [B, H] and the cache for `backward`, from tokens [B, T] and h0 [B, H]."""
    b, t = tokens.shape
    hid = p["R"].shape[1]
    xe = p["emb"][tokens]                                   # [B, T, E]
    xw = xe @ p["W"].T + p["Wb"]                            # [B, T, 3H]
    hs = np.empty((b, t + 1, hid), p["R"].dtype)            # hs[:, 0] = h0; hs[:, i + 1] = state after step i
    gates = np.empty((b, t, 3, hid), p["R"].dtype)           # z, r, n per step
    hrn = np.empty((b, t, hid), p["R"].dtype)               # h R_h + Rb_h (before the reset gate)
    hs[:, 0] = h0
    rt = p["R"].T
    for i in range(t):
        h = hs[:, i]
        hr = h @ rt + p["Rb"]
        zr = _sigmoid(xw[:, i, :2 * hid] + hr[:, :2 * hid])
        n = np.tanh(xw[:, i, 2 * hid:] + zr[:, hid:] * hr[:, 2 * hid:])
        z = zr[:, :hid]
        hs[:, i + 1] = n + z * (h - n)
        gates[:, i, :2] = zr.reshape(b, 2, hid)
        gates[:, i, 2] = n
        hrn[:, i] = hr[:, 2 * hid:]
    logits = hs[:, 1:] @ p["Wo"] + p["bo"]
    return logits, hs[:, -1].copy(), {"tokens": tokens, "xe": xe, "hs": hs, "gates": gates, "hrn": hrn}


def backward(p: dict[str, np.ndarray], cache: dict, dlogits: np.ndarray) -> dict[str, np.ndarray]:
    """Gradients of every parameter from the gradient of the loss with respect to the logits (BPTT in the chunk)."""
    hs, gates, hrn, xe = cache["hs"], cache["gates"], cache["hrn"], cache["xe"]
    b, t, hid = hrn.shape
    grads = {"Wo": hs[:, 1:].reshape(b * t, hid).T @ dlogits.reshape(b * t, -1), "bo": dlogits.sum(axis=(0, 1))}
    dh_out = dlogits @ p["Wo"].T                            # [B, T, H]
    dxw = np.empty((b, t, 3 * hid), hs.dtype)
    dhr = np.empty((b, t, 3 * hid), hs.dtype)
    dh = np.zeros((b, hid), hs.dtype)
    r_mat = p["R"]
    for i in range(t - 1, -1, -1):
        dh = dh + dh_out[:, i]
        z, r, n = gates[:, i, 0], gates[:, i, 1], gates[:, i, 2]
        h_prev = hs[:, i]
        dan = dh * (1.0 - z) * (1.0 - n * n)
        daz = dh * (h_prev - n) * z * (1.0 - z)
        dar = dan * hrn[:, i] * r * (1.0 - r)
        dxw[:, i, :hid], dxw[:, i, hid:2 * hid], dxw[:, i, 2 * hid:] = daz, dar, dan
        dhr[:, i, :2 * hid] = dxw[:, i, :2 * hid]
        dhr[:, i, 2 * hid:] = dan * r
        dh = dh * z + dhr[:, i] @ r_mat
    flat_dxw, flat_dhr = dxw.reshape(b * t, -1), dhr.reshape(b * t, -1)
    grads["R"] = flat_dhr.T @ hs[:, :-1].reshape(b * t, hid)
    grads["Rb"] = flat_dhr.sum(axis=0)
    grads["W"] = flat_dxw.T @ xe.reshape(b * t, -1)
    grads["Wb"] = flat_dxw.sum(axis=0)
    demb = np.zeros_like(p["emb"])
    np.add.at(demb, cache["tokens"].ravel(), flat_dxw @ p["W"])
    grads["emb"] = demb
    return grads


def loss_and_grads(p: dict[str, np.ndarray], tokens: np.ndarray, targets: np.ndarray,
                   h0: np.ndarray) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
    """Mean cross-entropy (nats) of predicting `targets` [B, T], its gradients, and the last state."""
    logits, h_last, cache = forward(p, tokens, h0)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=-1, keepdims=True)
    b, t = targets.shape
    picked = np.take_along_axis(probs, targets[..., None], axis=-1)[..., 0]
    loss = float(-np.log(picked + 1e-12).mean())
    np.put_along_axis(probs, targets[..., None], picked[..., None] - 1.0, axis=-1)
    return loss, backward(p, cache, probs / (b * t)), h_last


class Adam:
    """Adam with global-norm gradient clipping."""

    def __init__(self, params: dict[str, np.ndarray], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, clip: float = CLIP_NORM) -> None:
        self.params, self.betas, self.eps, self.clip, self.t = params, betas, eps, clip, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict[str, np.ndarray], lr: float) -> None:
        self.t += 1
        b1, b2 = self.betas
        norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
        factor = min(1.0, self.clip / (norm + 1e-12))
        scale = float(lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t))  # a Python float keeps float32
        for name, p in self.params.items():
            g = grads[name] * F32(factor)
            self.m[name] = b1 * self.m[name] + (1 - b1) * g
            self.v[name] = b2 * self.v[name] + (1 - b2) * g * g
            p -= scale * self.m[name] / (np.sqrt(self.v[name]) + self.eps)


def train(p: dict[str, np.ndarray], ids: np.ndarray, *, steps: int, batch: int, seq_len: int, lr: float,
          progress: bool = True) -> list[float]:
    """Truncated BPTT over `batch` parallel streams of the text (state carried between chunks), Adam with
    cosine decay. Stream b reads ids[b * len / batch:], so the order is fixed; returns the loss per step."""
    stream_len = (len(ids) - 1) // batch
    starts = np.arange(batch) * stream_len
    opt, h = Adam(p), np.zeros((batch, p["R"].shape[1]), F32)
    losses, began, pos = [], time.perf_counter(), 0
    for step in range(steps):
        if pos + seq_len > stream_len:
            pos, h = 0, np.zeros_like(h)
        idx = starts[:, None] + pos + np.arange(seq_len)
        loss, grads, h = loss_and_grads(p, ids[idx], ids[idx + 1], h)
        opt.step(grads, lr * 0.5 * (1 + float(np.cos(np.pi * step / steps))))
        losses.append(loss)
        pos += seq_len
        if progress and ((step + 1) % 100 == 0 or step + 1 == steps):
            recent = float(np.mean(losses[-100:])) / np.log(2)
            print(f"step {step + 1:5d}/{steps}  {recent:.3f} bits/char  ({time.perf_counter() - began:.1f}s)",
                  file=sys.stderr, flush=True)
    return losses
