"""Matching a declarative task's data to its model's inputs: which array feeds which input, and do the
shapes and dtypes fit the ONNX signature (the first dimension is the batch and must be dynamic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from runner.cards.declarative import DeclarativeSpec, ImageSpec
from runner.cards.model import TensorSpec
from runner.declarative.data import Sources, Where
from runner.errors import DataError

__all__ = ["feed"]


def feed(spec: DeclarativeSpec, sources: Sources, inputs: list[TensorSpec], where: Where) -> dict[str, np.ndarray]:
    """Model input name -> array of every sample (axis 0), cast to the input's dtype."""
    known = {t.name for t in inputs}
    for name in spec.data.inputs:
        if name not in known:
            raise DataError(f"{where('declarative', 'data', 'inputs', name)}: the model has no input {name!r}; "
                            f"its inputs: {', '.join(sorted(known))}")
    if sources.kind == "images":
        return _images(spec, sources, inputs, where)
    fed = {t.name: _fit(t, *_raw(spec, sources, t, inputs, where), where) for t in inputs}
    _same_count(fed, sources, where)
    return fed


def _raw(spec: DeclarativeSpec, sources: Sources, tensor: TensorSpec, inputs: list[TensorSpec],
         where: Where) -> tuple[np.ndarray, str]:
    """The array for one model input and how to name its source in a message."""
    file, arrays = sources.path.name, sources.arrays
    what = "key" if sources.kind == "arrays" else "column"
    named = spec.data.inputs.get(tensor.name)
    if isinstance(named, list):
        if sources.kind != "table":
            raise DataError(f"{where('declarative', 'data', 'inputs', tensor.name)}: a list of columns fits a "
                            f"table (.csv, .parquet), but the data is {file}; name one array key")
        missing = [c for c in named if c not in arrays]
        if missing:
            raise DataError(f"{where('declarative', 'data', 'inputs', tensor.name)}: {file} has no column(s) "
                            f"{', '.join(map(repr, missing))}; it has {sources.describe()}")
        return _columns(arrays, named, file), f"columns {', '.join(named)} of {file}"
    if named is not None:
        if named not in arrays:
            raise DataError(f"{where('declarative', 'data', 'inputs', tensor.name)}: {file} has no {what} "
                            f"{named!r}; it has {sources.describe()}")
        return arrays[named], f"{what} {named!r} of {file}"
    return _default(spec, sources, tensor, inputs, where)


def _default(spec: DeclarativeSpec, sources: Sources, tensor: TensorSpec, inputs: list[TensorSpec],
             where: Where) -> tuple[np.ndarray, str]:
    """An input not named in data.inputs: its own name, or the whole data file for a single-input model."""
    file, arrays = sources.path.name, sources.arrays
    if tensor.name in arrays:
        return arrays[tensor.name], f"{'key' if sources.kind == 'arrays' else 'column'} {tensor.name!r} of {file}"
    if "" in arrays and len(inputs) == 1:
        return arrays[""], file
    rest = [name for name in arrays if name not in (spec.references.key, spec.references.column)
            and name not in spec.data.inputs.values()]
    if len(inputs) == 1 and sources.kind == "table" and rest:
        return _columns(arrays, rest, file), f"columns {', '.join(rest)} of {file}"
    if len(inputs) == 1 and len(rest) == 1:
        return arrays[rest[0]], f"key {rest[0]!r} of {file}"
    raise DataError(f"{where('declarative', 'data', 'inputs')}: model input {tensor.name!r} has no data: {file} "
                    f"has {sources.describe()}; name its source in declarative.data.inputs.{tensor.name}")


def _columns(arrays: dict[str, np.ndarray], names: list[str], file: str) -> np.ndarray:
    for name in names:
        column = arrays[name]
        if column.dtype.kind not in "biuf":
            raise DataError(f"{file}: column {name!r} holds {column.dtype} values such as {column[0]!r}, not numbers")
        if column.dtype.kind == "f" and np.isnan(column).any():
            raise DataError(f"{file}: column {name!r} has {int(np.isnan(column).sum())} missing values")
    return np.column_stack([arrays[name] for name in names])


def _fit(tensor: TensorSpec, values: np.ndarray, source: str, where: Where) -> np.ndarray:
    """Check `values` against the input's shape and dtype; cast and reshape as the model needs."""
    at = where("declarative", "data", "inputs", tensor.name) if tensor.name else where("declarative", "data")
    if not tensor.shape or not isinstance(tensor.shape[0], str):
        raise DataError(f"{at}: model input {tensor.name!r} has shape {tensor.shape}: infersight batches samples "
                        f"on the first dimension, which must be dynamic (export the model with a batch axis)")
    want = tensor.shape[1:]
    got = values.shape[1:]
    if values.ndim == 1 and want in ([1], ["1"]):
        values, got = values.reshape(-1, 1), (1,)
    if len(got) != len(want) or any(isinstance(w, int) and w != g for w, g in zip(want, got)):
        raise DataError(f"{at}: model input {tensor.name!r} takes samples of shape {want} ({tensor.dtype}), but "
                        f"{source} has samples of shape {list(got)}")
    return np.ascontiguousarray(_cast(values, tensor, source, at))


def _cast(values: np.ndarray, tensor: TensorSpec, source: str, at: str) -> np.ndarray:
    want = np.dtype(tensor.dtype) if not tensor.dtype.startswith("onnx-type") else None
    have = values.dtype
    if want is None or want.kind not in "biuf":
        raise DataError(f"{at}: model input {tensor.name!r} is {tensor.dtype}, which infersight cannot feed from "
                        f"data files")
    if have == want:
        return values
    widening = want.kind == "f" and have.kind in "biuf"
    ok = widening or (want.kind in "iu" and have.kind in "biu" and _fits(values, want))
    if not ok:
        raise DataError(f"{at}: model input {tensor.name!r} is {want.name}, but {source} holds {have.name} values "
                        f"(write the data as {want.name})")
    return values.astype(want)


def _fits(values: np.ndarray, dtype: np.dtype) -> bool:
    info = np.iinfo(dtype)
    return values.size == 0 or (int(values.min()) >= info.min and int(values.max()) <= info.max)


def _same_count(fed: dict[str, np.ndarray], sources: Sources, where: Where) -> None:
    counts = {name: len(a) for name, a in fed.items()}
    if len(set(counts.values())) > 1:
        raise DataError(f"{where('declarative', 'data', 'inputs')}: the inputs have different sample counts in "
                        f"{sources.path.name}: " + ", ".join(f"{n} {c}" for n, c in counts.items()))


def _images(spec: DeclarativeSpec, sources: Sources, inputs: list[TensorSpec], where: Where) -> dict[str, np.ndarray]:
    at = where("declarative", "data", "file")
    if len(inputs) != 1:
        raise DataError(f"{at}: a folder of images feeds a single-input model; this one has inputs "
                        f"{', '.join(t.name for t in inputs)}")
    tensor = inputs[0]
    image = spec.data.images or ImageSpec()
    layout, height, width = _layout(tensor, image, at)
    batch = np.stack([_pixels(p, image, width, height, at) for p in sources.image_files])
    if layout == "NCHW":
        batch = batch.transpose(0, 3, 1, 2)
    elif layout == "NHW":
        batch = batch[..., 0]
    return {tensor.name: _fit(tensor, batch, f"the images of {sources.path.name}", where)}


def _layout(tensor: TensorSpec, image: ImageSpec, at: str) -> tuple[str, int, int]:
    channels = 3 if image.mode == "RGB" else 1
    dims = tensor.shape[1:]
    fixed = [d if isinstance(d, int) else None for d in dims]
    if len(dims) == 3 and fixed[0] == channels and fixed[1] and fixed[2]:
        return "NCHW", fixed[1], fixed[2]
    if len(dims) == 3 and fixed[2] == channels and fixed[0] and fixed[1]:
        return "NHWC", fixed[0], fixed[1]
    if len(dims) == 2 and channels == 1 and fixed[0] and fixed[1]:
        return "NHW", fixed[0], fixed[1]
    raise DataError(f"{at}: model input {tensor.name!r} has shape {tensor.shape}; images ({image.mode}, "
                    f"{channels} channel(s)) need [batch, {channels}, H, W] or [batch, H, W, {channels}] with "
                    f"fixed H and W")


def _pixels(path: Path, image: ImageSpec, width: int, height: int, at: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert(image.mode).resize((width, height)), dtype=np.float32)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{at}: cannot read image {path}: {exc}") from None
    pixels = pixels.reshape(height, width, -1) * image.scale
    if image.mean:
        pixels = pixels - np.asarray(image.mean, dtype=np.float32)
    if image.std:
        pixels = pixels / np.asarray(image.std, dtype=np.float32)
    return pixels
