"""A small convolutional network in pure numpy: layers with forward and backward passes, and Adam.

Everything is float32 and NCHW, like the ONNX graph it is exported to (tasks/digits/build_model.py).
Training is deterministic for a given seed when BLAS runs on one thread (the caller limits it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Conv", "Relu", "MaxPool", "Flatten", "Dense", "build_network", "forward", "train"]

F32 = np.float32


class Conv:
    """k x k convolution, stride 1, 'same' zero padding, computed as one matrix product over im2col patches."""

    def __init__(self, rng: np.random.Generator, c_in: int, c_out: int, k: int = 3) -> None:
        std = np.sqrt(2.0 / (c_in * k * k))  # He initialisation for ReLU networks
        self.k = k
        self.params = {"W": (rng.standard_normal((c_out, c_in, k, k)) * std).astype(F32),
                       "b": np.zeros(c_out, F32)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, _, h, w = x.shape
        cols = _im2col(x, self.k)
        self._cache = (x.shape, cols)
        w_mat = self.params["W"].reshape(len(self.params["b"]), -1)
        out = cols @ w_mat.T + self.params["b"]
        return out.reshape(n, h, w, -1).transpose(0, 3, 1, 2)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        shape, cols = self._cache
        w = self.params["W"]
        d_flat = dout.transpose(0, 2, 3, 1).reshape(-1, w.shape[0])
        self.grads = {"W": (d_flat.T @ cols).reshape(w.shape), "b": d_flat.sum(axis=0)}
        return _col2im(d_flat @ w.reshape(w.shape[0], -1), shape, self.k)


def _im2col(x: np.ndarray, k: int) -> np.ndarray:
    """(N, C, H, W) -> (N*H*W, C*k*k); column order (c, ki, kj) matches W.reshape(C_out, -1)."""
    n, c, h, w = x.shape
    p = k // 2
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    windows = sliding_window_view(padded, (k, k), axis=(2, 3))  # (N, C, H, W, k, k)
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * k * k)


def _col2im(d_cols: np.ndarray, shape: tuple[int, ...], k: int) -> np.ndarray:
    """Adjoint of _im2col: scatter-add patch gradients back onto the (unpadded) input."""
    n, c, h, w = shape
    p = k // 2
    d = d_cols.reshape(n, h, w, c, k, k)
    dx = np.zeros((n, c, h + 2 * p, w + 2 * p), F32)
    for i in range(k):
        for j in range(k):
            dx[:, :, i:i + h, j:j + w] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx[:, :, p:p + h, p:p + w]


class Relu:
    params: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._mask = x > 0
        return x * self._mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self._mask


class MaxPool:
    """2 x 2 max pooling, stride 2; the gradient goes to the first maximum of each window."""

    params: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, c, h, w = x.shape
        blocks = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
        idx = blocks.argmax(axis=-1)[..., None]
        self._cache = (x.shape, idx)
        return np.take_along_axis(blocks, idx, axis=-1)[..., 0]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        (n, c, h, w), idx = self._cache
        d = np.zeros(idx.shape[:-1] + (4,), F32)
        np.put_along_axis(d, idx, dout[..., None], axis=-1)
        return d.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


class Flatten:
    params: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self._shape)


class Dense:
    """y = x @ W + b, W shaped (in, out) (ONNX Gemm with transB=0)."""

    def __init__(self, rng: np.random.Generator, n_in: int, n_out: int, gain: float = 2.0) -> None:
        self.params = {"W": (rng.standard_normal((n_in, n_out)) * np.sqrt(gain / n_in)).astype(F32),
                       "b": np.zeros(n_out, F32)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": self._x.T @ dout, "b": dout.sum(axis=0)}
        return dout @ self.params["W"].T


Layer = Conv | Relu | MaxPool | Flatten | Dense


def build_network(rng: np.random.Generator, widths: tuple[int, int, int] = (64, 256, 384),
                  hidden: int = 256, classes: int = 10) -> list[Layer]:
    """Conv-ReLU, Conv-ReLU-Pool (8x8 -> 4x4), Conv-ReLU-Pool (-> 2x2), Flatten, Dense-ReLU, Dense."""
    c1, c2, c3 = widths
    return [Conv(rng, 1, c1), Relu(), Conv(rng, c1, c2), Relu(), MaxPool(),
            Conv(rng, c2, c3), Relu(), MaxPool(), Flatten(),
            Dense(rng, c3 * 2 * 2, hidden), Relu(), Dense(rng, hidden, classes, gain=1.0)]


def forward(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    for layer in layers:
        x = layer.forward(x)
    return x


def _softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean loss over the batch and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(-np.log(probs[rows, y] + 1e-12).mean())
    probs[rows, y] -= 1.0
    return loss, (probs / len(y)).astype(F32)


class Adam:
    def __init__(self, layers: list[Layer], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.layers, self.lr, self.betas, self.eps, self.t = layers, lr, betas, eps, 0
        self.m = [{k: np.zeros_like(v) for k, v in layer.params.items()} for layer in layers]
        self.v = [{k: np.zeros_like(v) for k, v in layer.params.items()} for layer in layers]

    def step(self, lr: float) -> None:
        self.t += 1
        b1, b2 = self.betas
        scale = float(lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t))  # a Python float keeps float32
        for layer, m, v in zip(self.layers, self.m, self.v):
            for name, p in layer.params.items():
                g = layer.grads[name]
                m[name] = b1 * m[name] + (1 - b1) * g
                v[name] = b2 * v[name] + (1 - b2) * g * g
                p -= scale * m[name] / (np.sqrt(v[name]) + self.eps)


def _batches(rng: np.random.Generator, n: int, batch_size: int) -> Iterator[np.ndarray]:
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train(layers: list[Layer], x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, epochs: int,
          batch_size: int, lr: float, progress: bool = True) -> None:
    """Adam with a cosine learning-rate decay; one progress line per epoch on stderr."""
    opt = Adam(layers, lr)
    steps_per_epoch = -(-len(x) // batch_size)
    total = epochs * steps_per_epoch
    for epoch in range(1, epochs + 1):
        start, loss_sum, correct = time.perf_counter(), 0.0, 0
        for idx in _batches(rng, len(x), batch_size):
            logits = forward(layers, x[idx])
            loss, grad = _softmax_cross_entropy(logits, y[idx])
            for layer in reversed(layers):
                grad = layer.backward(grad)
            opt.step(lr * 0.5 * (1 + float(np.cos(np.pi * opt.t / total))))
            loss_sum += loss * len(idx)
            correct += int((logits.argmax(axis=1) == y[idx]).sum())
        if progress:
            print(f"epoch {epoch:3d}/{epochs}  loss {loss_sum / len(x):.4f}  train_acc {correct / len(x):.4f}"
                  f"  ({time.perf_counter() - start:.1f}s)", file=sys.stderr, flush=True)
