"""Reading a declarative task's data (.npz, .npy, .csv, .parquet or a folder of images) and references.

`read_sources` gives the raw arrays by source name (npz keys or table columns); `feed` then matches
them to the model's inputs (runner/declarative/feed.py). Every problem raises one DataError naming the
file and the card's line.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runner.cards.declarative import DeclarativeSpec, ReferenceSpec
from runner.errors import DataError

__all__ = ["Sources", "Where", "read_sources", "read_references", "TABLES", "ARRAYS", "IMAGES"]

TABLES = (".csv", ".parquet", ".pq")
ARRAYS = (".npz", ".npy")
IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

Where = Callable[..., str]  # where(*field path) -> "card.yaml:LINE: dotted.field"


@dataclass
class Sources:
    """The data file's arrays by name (npz keys, table columns, or "" for an .npy or an image folder)."""

    path: Path
    kind: str  # "arrays", "table" or "images"
    arrays: dict[str, np.ndarray]
    image_files: list[Path] | None = None

    def describe(self) -> str:
        what = {"arrays": "keys", "table": "columns", "images": "images"}[self.kind]
        if self.kind == "images":
            return f"{len(self.image_files or [])} images"
        return f"{what} {', '.join(self.arrays) or '(none)'}"


def read_sources(spec: DeclarativeSpec, base: Path, where: Where) -> Sources:
    """Read the data file (or list the image folder) named by declarative.data.file."""
    path = _resolve(base, spec.data.file)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGES and p.is_file())
        if not files:
            raise DataError(f"{where('declarative', 'data', 'file')}: folder {path} holds no images "
                            f"({', '.join(IMAGES)})")
        return Sources(path, "images", {}, files)
    if not path.is_file():
        raise DataError(f"{where('declarative', 'data', 'file')}: data file {path} not found")
    return _read_file(path, where("declarative", "data", "file"))


def _read_file(path: Path, where: str) -> Sources:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                return Sources(path, "arrays", {k: npz[k] for k in npz.files})
        if suffix == ".npy":
            return Sources(path, "arrays", {"": np.load(path, allow_pickle=False)})
        if suffix in TABLES:
            frame = _read_table(path)
            return Sources(path, "table", {str(c): frame[c].to_numpy() for c in frame.columns})
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{where}: cannot read {path} as {suffix}: {_first_line(exc)}") from None
    raise DataError(f"{where}: {path}: unknown data format {suffix!r}; use one of "
                    f"{', '.join(ARRAYS + TABLES)} or a folder of images")


def _read_table(path: Path):
    import pandas as pd

    if path.suffix.lower() == ".csv":
        try:
            return pd.read_csv(path)
        except pd.errors.ParserError as exc:
            raise ValueError(str(exc)) from None
    try:
        return pd.read_parquet(path)
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
        raise ValueError(f"Parquet needs pyarrow: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own types for a file that is not Parquet
        raise ValueError(str(exc)) from None


def read_references(spec: DeclarativeSpec, base: Path, sources: Sources, where: Where) -> np.ndarray:
    """The reference answers, one per sample, in data order (numbers: class ids or regression targets)."""
    ref = spec.references
    if ref.subfolders:
        return _subfolder_classes(sources, where("declarative", "references", "subfolders"))
    if ref.file:
        return _numeric(_reference_file(ref, base, where), where("declarative", "references"))
    name = ref.key if ref.key is not None else ref.column
    field = "key" if ref.key is not None else "column"
    if sources.kind == "images" or (field == "key") != (sources.kind == "arrays") or "" in sources.arrays:
        raise DataError(f"{where('declarative', 'references', field)}: references.{field} fits "
                        f"{'an .npz' if field == 'key' else 'a table (.csv, .parquet)'}, but the data is "
                        f"{sources.path.name}; use references.file for a separate file")
    if name not in sources.arrays:
        raise DataError(f"{where('declarative', 'references', field)}: {sources.path.name} has no "
                        f"{'key' if field == 'key' else 'column'} {name!r}; it has {sources.describe()}")
    return _numeric(sources.arrays[name], where("declarative", "references", field))


def _reference_file(ref: ReferenceSpec, base: Path, where: Where) -> np.ndarray:
    path = _resolve(base, ref.file)
    at = where("declarative", "references", "file")
    if not path.is_file():
        raise DataError(f"{at}: reference file {path} not found")
    if path.suffix.lower() == ".txt":
        try:
            return np.loadtxt(path, ndmin=1)
        except ValueError as exc:
            raise DataError(f"{at}: cannot read {path} as numbers, one per line: {_first_line(exc)}") from None
    sources = _read_file(path, at)
    if ref.column is not None:
        if ref.column not in sources.arrays:
            raise DataError(f"{where('declarative', 'references', 'column')}: {path.name} has no "
                            f"{'key' if sources.kind == 'arrays' else 'column'} {ref.column!r}; it has "
                            f"{sources.describe()}")
        return sources.arrays[ref.column]
    if len(sources.arrays) != 1:
        raise DataError(f"{at}: {path.name} has {sources.describe()}: name the one holding the references "
                        f"in references.column")
    return next(iter(sources.arrays.values()))


def _subfolder_classes(sources: Sources, at: str) -> np.ndarray:
    if sources.kind != "images":
        raise DataError(f"{at}: references.subfolders needs a folder of images as data")
    folders = [p.parent.relative_to(sources.path).as_posix() for p in sources.image_files]
    if any(f == "." for f in folders):
        raise DataError(f"{at}: images lie directly in {sources.path}, outside class subfolders")
    classes = {name: i for i, name in enumerate(sorted(set(folders)))}
    return np.array([classes[f] for f in folders], dtype=np.int64)


def _numeric(values: np.ndarray, at: str) -> np.ndarray:
    if values.dtype.kind not in "biuf":
        raise DataError(f"{at}: references must be numbers (class ids or values), found {values.dtype} "
                        f"values such as {values.flat[0]!r}" if values.size else f"{at}: no references")
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise DataError(f"{at}: references hold {int(np.isnan(values).sum())} missing values (NaN)")
    return values


def _resolve(base: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else base / path


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
