"""Clips of speech in noise with known speech positions, made here from local sources only.

Sentences are the lines of the Zen of Python (CPython's `this` module); Debian's espeak-ng speaks
them (voice, pitch and speed chosen by a seeded generator), the speech is resampled to 16 kHz,
trimmed of espeak's leading and trailing silence and placed at a seeded position in seeded noise.
The label of each 32 ms chunk is 1 when at least half of it lies inside the placed speech.
Deterministic for one espeak-ng version (its version and the clips' sha256 go in the model cards).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import shutil
import subprocess
import wave

import numpy as np
from scipy.signal import resample_poly

from runner.errors import ModelFileError

__all__ = ["RATE", "CHUNK", "CONTEXT", "make_clips", "chunk_windows", "espeak_version", "clips_sha256"]

RATE, CHUNK, CONTEXT = 16_000, 512, 64  # silero-vad at 16 kHz: 512-sample chunks, 64 samples of context
_VOICES = ("en", "en-us", "en-gb-x-rp", "en+m3", "en+f2", "en-us+f4", "en+m7", "en-gb-scotland")


def _sentences() -> list[str]:
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    lines = codecs.decode(this.s, "rot13").splitlines()
    return [ln.strip().rstrip(".") for ln in lines[2:] if len(ln.split()) >= 4]


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ModelFileError("task vad: espeak-ng is not installed (it speaks the task's sentences); "
                             "install it with `make espeak` (Debian package espeak-ng)")
    return exe


def espeak_version() -> str:
    """espeak-ng's version line (the speech depends on it)."""
    out = subprocess.run([_espeak(), "--version"], capture_output=True, text=True).stdout.strip()
    return out.split(" Data at:")[0]


def _speak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's speech of `text` as float32 at 16 kHz, trimmed of leading and trailing silence."""
    wav = subprocess.run([_espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                         capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    audio = resample_poly(pcm.astype(np.float64) / 32768.0, RATE, rate)
    loud = np.flatnonzero(np.abs(audio) > 0.02)
    return audio[loud[0]:loud[-1] + 1].astype(np.float32)


def make_clips(count: int, seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` clips (float32 [count, samples]) and per-chunk labels (int8 [count, chunks])."""
    rng = np.random.default_rng(seed)
    sentences, length = _sentences(), int(seconds * RATE) // CHUNK * CHUNK
    clips = np.zeros((count, length), np.float32)
    spans = np.zeros((count, 2), np.int64)
    for i in range(count):
        speech = _speak(sentences[rng.integers(len(sentences))], _VOICES[rng.integers(len(_VOICES))],
                        int(rng.integers(130, 200)), int(rng.integers(30, 70)))[: length - RATE // 2]
        start = int(rng.integers(RATE // 4, length - len(speech) - RATE // 4 + 1))
        noise = rng.normal(0.0, 10 ** (rng.uniform(-3.5, -2.5)), length)
        clips[i] = noise
        clips[i, start:start + len(speech)] += speech * rng.uniform(0.3, 0.9)
        spans[i] = start, start + len(speech)
    return np.clip(clips, -1, 1), _labels(spans, length)


def _labels(spans: np.ndarray, length: int) -> np.ndarray:
    edges = np.arange(0, length, CHUNK)
    overlap = (np.minimum(edges[None] + CHUNK, spans[:, 1:]) - np.maximum(edges[None], spans[:, :1])).clip(0)
    return (overlap >= CHUNK // 2).astype(np.int8)


def chunk_windows(clips: np.ndarray) -> np.ndarray:
    """The model's input per step: each chunk with the 64 samples before it (zeros before the clip),
    float32 [count, chunks, 576], as silero-vad's own wrapper feeds it."""
    padded = np.concatenate([np.zeros((len(clips), CONTEXT), np.float32), clips], axis=1)
    chunks = clips.shape[1] // CHUNK
    index = np.arange(chunks)[:, None] * CHUNK + np.arange(CHUNK + CONTEXT)[None]
    return padded[:, index]


def clips_sha256(clips: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the clips' and labels' bytes (which data a model card's quality was measured on)."""
    return hashlib.sha256(clips.tobytes() + labels.tobytes()).hexdigest()
