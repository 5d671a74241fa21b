"""Images of printed text with known content, rendered here with Pillow and Debian's fonts.

Each image (uint8 RGB [128, 512]) holds two lines of words from the Zen of Python (CPython's `this`
module), each line in a seeded font (14-28 px), ink and position on a seeded light background,
blurred (Gaussian, radius 0-1.2) and noisy (sigma 8); its reference text is the two lines joined by
a newline. Deterministic for one set of font files and one Pillow version (the images' sha256 goes in the model cards).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from runner.errors import ModelFileError

__all__ = ["HEIGHT", "WIDTH", "FONTS", "render", "images_sha256"]

HEIGHT, WIDTH = 128, 512
FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf")


def _words() -> list[str]:
    with contextlib.redirect_stdout(io.StringIO()):
        import this
    text = codecs.decode(this.s, "rot13")
    return sorted({w.strip(".,!*'-") for w in text.split() if len(w.strip(".,!*'-")) >= 2})


def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    if not Path(path).exists():
        raise ModelFileError(f"{path}: font missing (task ocr renders its images with Debian's fonts); "
                             f"install them with `make task-tools` (fonts-dejavu-core, fonts-liberation)")
    return ImageFont.truetype(path, size)


def _line(rng: np.random.Generator, words: list[str], max_chars: int) -> str:
    line = ""
    while True:
        word = words[rng.integers(len(words))]
        if len(line) + len(word) + 1 > max_chars:
            return line or word[:max_chars]
        line = f"{line} {word}" if line else word


def render(count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """`count` images (uint8 [count, 128, 512, 3]) and their reference texts."""
    rng, words = np.random.default_rng(seed), _words()
    images, texts = np.empty((count, HEIGHT, WIDTH, 3), np.uint8), []
    for i in range(count):
        bg = int(rng.integers(170, 256))
        img = Image.new("L", (WIDTH, HEIGHT), bg)
        draw, lines = ImageDraw.Draw(img), []
        for top in (int(rng.integers(8, 20)), int(rng.integers(68, 78))):
            font = _font(FONTS[rng.integers(len(FONTS))], int(rng.integers(14, 29)))
            text = _line(rng, words, 26)
            while draw.textlength(text, font=font) > WIDTH - 24:
                text = text.rsplit(" ", 1)[0] if " " in text else text[:-1]
            draw.text((int(rng.integers(8, 16)), top), text, fill=int(rng.integers(20, 140)), font=font)
            lines.append(text)
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 1.2))))
        noisy = np.asarray(img, np.float64) + rng.normal(0, 8, (HEIGHT, WIDTH))
        images[i] = np.clip(noisy, 0, 255).astype(np.uint8)[..., None]
        texts.append("\n".join(lines))
    return images, texts


def images_sha256(images: np.ndarray, texts: list[str]) -> str:
    """sha256 of the images' bytes and their texts (which data a model card's quality was measured on)."""
    return hashlib.sha256(images.tobytes() + "\x00".join(texts).encode()).hexdigest()
