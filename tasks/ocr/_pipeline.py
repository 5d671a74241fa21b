"""The OCR pipeline around PP-OCRv4's two models: detect text boxes, crop them, recognise each crop.

As RapidOCR (rapidocr-onnxruntime 1.4.4, its config.yaml) does it, for horizontal text:
- detection: the image scaled to [-1, 1] (mean 0.5, std 0.5), one run of the DB detector on the
  whole batch; its probability map thresholded at 0.3 and dilated (2x2); each connected region
  (scipy.ndimage) whose mean probability is at least 0.5 becomes a box, grown by DB's unclip
  distance (area x 1.6 / perimeter). Boxes are axis-aligned (the rendered text is horizontal;
  RapidOCR fits rotated rectangles with OpenCV).
- recognition: each crop resized to height 48 (width by its aspect ratio), the crops of a batch
  padded to one width (at least 320) and run together; CTC greedy decoding over the model's own
  character list (its ONNX metadata 'character', with blank first and space last).
The text of an image is its boxes' texts, top to bottom (lines), left to right, lines joined by newlines.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image
from scipy import ndimage

from runner.backends.pipeline import Step

__all__ = ["OcrPipeline", "detect_input", "boxes"]

_THRESH, _BOX_THRESH, _UNCLIP, _MIN_SIZE, _REC_H = 0.3, 0.5, 1.6, 3, 48


def detect_input(images: np.ndarray) -> np.ndarray:
    """uint8 [n, h, w, 3] -> float32 [n, 3, h, w] in [-1, 1] (h and w multiples of 32)."""
    return np.ascontiguousarray((images.transpose(0, 3, 1, 2).astype(np.float32) / 127.5) - 1.0)


def boxes(prob: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Text boxes (x0, y0, x1, y1) of one probability map [h, w], in reading order."""
    h, w = prob.shape
    mask = ndimage.binary_dilation(prob > _THRESH, structure=np.ones((2, 2), bool))
    labels, _ = ndimage.label(mask)
    found = []
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = region
        bh, bw = ys.stop - ys.start, xs.stop - xs.start
        if min(bh, bw) < _MIN_SIZE or prob[region][labels[region] == index].mean() < _BOX_THRESH:
            continue
        grow = bh * bw * _UNCLIP / (2 * (bh + bw))
        found.append((max(0, int(xs.start - grow)), max(0, int(ys.start - grow)),
                      min(w, int(np.ceil(xs.stop + grow))), min(h, int(np.ceil(ys.stop + grow)))))
    return _reading_order(found)


def _reading_order(found: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Sort by top edge, then boxes whose tops lie within 10 px of each other by left edge (as RapidOCR)."""
    found = sorted(found, key=lambda b: (b[1], b[0]))
    for i in range(len(found) - 1):
        for j in range(i, -1, -1):
            if abs(found[j + 1][1] - found[j][1]) < 10 and found[j + 1][0] < found[j][0]:
                found[j], found[j + 1] = found[j + 1], found[j]
            else:
                break
    return found


def _recognise_input(crops: list[np.ndarray]) -> np.ndarray:
    """Crops uint8 [h, w, 3] -> float32 [n, 3, 48, W] in [-1, 1], right-padded with zeros."""
    widths = [max(1, int(np.ceil(_REC_H * c.shape[1] / c.shape[0]))) for c in crops]
    batch = np.zeros((len(crops), 3, _REC_H, max(320, *widths)), np.float32)
    for i, (crop, width) in enumerate(zip(crops, widths)):
        resized = np.asarray(Image.fromarray(crop).resize((width, _REC_H), Image.BILINEAR), np.float32)
        batch[i, :, :, :width] = resized.transpose(2, 0, 1) / 127.5 - 1.0
    return batch


class OcrPipeline:
    """inputs {"image": uint8 [n, h, w, 3]} -> [text of each image (object [n])], with two models:
    'main' (the detector) and 'rec' (the recogniser)."""

    def __init__(self, characters: list[str], det_input: str, rec_input: str) -> None:
        self.characters = np.array(["", *characters, " "], dtype=object)
        self.det_input, self.rec_input = det_input, rec_input

    def __call__(self, models: Mapping[str, Step], inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        images = inputs["image"]
        prob = models["main"]({self.det_input: detect_input(images)})[0][:, 0]
        found = [boxes(p) for p in prob]
        crops = [images[i, y0:y1, x0:x1] for i, bs in enumerate(found) for x0, y0, x1, y1 in bs]
        texts = self._recognise(models["rec"], crops) if crops else []
        out, at = np.empty(len(images), dtype=object), 0
        for i, bs in enumerate(found):
            out[i] = _join(bs, texts[at:at + len(bs)])
            at += len(bs)
        return [out]

    def _recognise(self, rec: Step, crops: list[np.ndarray]) -> list[str]:
        best = rec({self.rec_input: _recognise_input(crops)})[0].argmax(axis=2)
        keep = np.ones_like(best, bool)
        keep[:, 1:] = best[:, 1:] != best[:, :-1]
        keep &= best != 0
        return ["".join(self.characters[row[k]]) for row, k in zip(best, keep)]


def _join(found: list[tuple[int, int, int, int]], texts: list[str]) -> str:
    """Boxes on one line (tops within 10 px) joined by a space, lines by a newline."""
    lines: list[list[str]] = []
    last_top = None
    for (_, top, _, _), text in zip(found, texts):
        if last_top is None or abs(top - last_top) >= 10:
            lines.append([])
        lines[-1].append(text)
        last_top = top
    return "\n".join(" ".join(line) for line in lines)
