"""The text of the `charlm` task: CPython's pydoc_data help topics, a character vocabulary and the split.

Vocabulary: id 0 is the newline, ids 1-95 the printable ASCII characters (space to '~'), id 96
stands for every other character. Split: the topics sorted by name; a seeded permutation picks
round(test_fraction x topics) of them as held-out text, the rest is training text. Topic texts
are joined with a newline in name order on both sides.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

__all__ = ["VOCAB", "VOCAB_SIZE", "UNKNOWN", "SPLIT_SEED", "TEST_FRACTION", "encode", "decode", "topics",
           "load_split", "windows", "text_sha256", "corpus_source", "bits_per_char"]

VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))
UNKNOWN = len(VOCAB)
VOCAB_SIZE = len(VOCAB) + 1
SPLIT_SEED = 20261201
TEST_FRACTION = 0.15

_TABLE = np.full(128, UNKNOWN, np.int64)
_TABLE[[ord(c) for c in VOCAB]] = np.arange(len(VOCAB))
_CHARS = np.array(list(VOCAB) + ["\ufffd"])


def encode(text: str) -> np.ndarray:
    """Token ids (int64) of a string; characters outside the vocabulary become UNKNOWN."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    ids = np.full(len(codes), UNKNOWN, np.int64)
    ascii_ = codes < 128
    ids[ascii_] = _TABLE[codes[ascii_]]
    return ids


def decode(ids: np.ndarray) -> str:
    """The string of token ids; UNKNOWN (or any id out of range) reads as U+FFFD."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    return "".join(_CHARS[np.clip(ids, 0, UNKNOWN)])


def topics() -> dict[str, str]:
    """pydoc_data's help topics (ships with CPython), sorted by name."""
    from pydoc_data.topics import topics as raw

    return {name: raw[name] for name in sorted(raw)}


def corpus_source() -> str:
    """Where the text comes from, with the Python version (the text changes between CPython releases)."""
    return f"pydoc_data.topics.topics of CPython {sys.version.split()[0]}"


def load_split(seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(training ids, held-out ids): the topics picked by a seeded permutation are held out."""
    texts = topics()
    names = list(texts)
    held = round(test_fraction * len(names))
    if not 0 < held < len(names):
        raise ValueError(f"test_fraction {test_fraction} holds out {held} of {len(names)} topics")
    chosen = set(np.random.default_rng(seed).permutation(len(names))[:held].tolist())
    train = "\n".join(texts[n] for i, n in enumerate(names) if i not in chosen)
    test = "\n".join(texts[n] for i, n in enumerate(names) if i in chosen)
    return encode(train), encode(test)


def windows(ids: np.ndarray, count: int, length: int) -> np.ndarray:
    """`count` non-overlapping windows of `length` ids, evenly spaced over `ids`: int64 [count, length]."""
    if count < 1 or length < 2:
        raise ValueError(f"need at least 1 window of at least 2 characters, got {count} x {length}")
    if count * length > len(ids):
        raise ValueError(f"{count} windows of {length} characters need {count * length} characters, "
                         f"the held-out text has {len(ids)}")
    starts = (np.arange(count) * (len(ids) - length)) // max(count - 1, 1)
    return np.ascontiguousarray(ids[starts[:, None] + np.arange(length)])


def text_sha256(ids: np.ndarray) -> str:
    """sha256 of token ids as little-endian int64 (identifies the exact text a model was built on)."""
    return hashlib.sha256(np.asarray(ids, dtype="<i8").tobytes()).hexdigest()


def bits_per_char(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Per window: mean bits of predicting characters 2..T from the logits [n, T, V] of steps 1..T-1.

    The log-softmax runs in float64; the result is the cross-entropy in base 2 (lower is better).
    """
    scores = logits[:, :-1].astype(np.float64)
    scores -= scores.max(axis=-1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, tokens[:, 1:, None], axis=-1)[..., 0]
    return -picked.mean(axis=1) / np.log(2)
