"""Read a run bundle and check it complete and consistent before anything is stored.

Every problem raises one ImportFormatError naming the bundle file (and line for JSON): an unsafe name in
an archive (absolute, `..`, a link), a missing or altered file (size and sha256 against the manifest),
damaged JSON, a card that does not validate or whose recomputed hash differs from the run's, per-query
columns that do not match their count, an unsupported bundle version; a bundle over the size limits
(Limits: bytes received, bytes unpacked, number of files) raises BundleTooLarge before it is unpacked.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np
from pydantic import ValidationError

from runner.bundles._format import (BUNDLE_VERSION, CARD_KINDS, CARD_MODELS, MANIFEST, AccuracyFile, BundleManifest,
                                    PerformanceFile, RunFile, run_files)
from runner.cards._base import card_hash, format_errors
from runner.errors import BundleTooLarge, CardError, ImportFormatError
from runner.loading import decode_utf8, load_json
from runner.store.schema import OPTIONAL_PERF_COLUMNS, PERF_COLUMNS

__all__ = ["BundledRun", "Bundle", "Limits", "read_bundle", "unpack_zip", "check_bundle"]


@dataclass(frozen=True)
class BundledRun:
    """One run of a bundle, checked: its run file, cards {kind: dict}, per-query columns and accuracy log."""

    run: RunFile
    cards: dict[str, dict[str, Any]]
    performance: PerformanceFile
    records: dict[str, np.ndarray]
    accuracy: AccuracyFile


@dataclass(frozen=True)
class Bundle:
    """A checked bundle: its manifest, the manifest's sha256 (the bundle's identity), its runs, and the
    bytes of its files together."""

    path: Path
    manifest: BundleManifest
    sha256: str
    runs: tuple[BundledRun, ...]
    size_bytes: int = 0


@dataclass(frozen=True)
class Limits:
    """The most a bundle may hold, checked before its files are unpacked (a zip bomb is refused unread)."""

    max_bytes: int = 512 << 20           # the archive as received
    max_unpacked_bytes: int = 2 << 30    # its files together, unpacked
    max_files: int = 80_001              # 10,000 runs of 8 files, and the manifest


def read_bundle(path: Path, limits: Limits = Limits()) -> Bundle:
    """Read and check the bundle at `path` (folder, .zip, .tar, .tar.gz); ImportFormatError on any problem."""
    path = Path(path)
    return check_bundle(_read_files(path, limits), str(path))


def unpack_zip(source: BinaryIO, label: str, limits: Limits = Limits()) -> dict[str, bytes]:
    """The files {name: bytes} of a bundle sent as a zip archive (an open binary file), every name checked,
    unchecked otherwise (check_bundle checks them); ImportFormatError (BundleTooLarge over the limits)."""
    if not zipfile.is_zipfile(source):
        raise ImportFormatError(label, None, "not a run bundle: not a zip archive (send what "
                                             "`infersight export bundle RUN --out x.zip` writes)")
    return _zip(source, label, limits)


def check_bundle(files: Mapping[str, bytes], label: str) -> Bundle:
    """Check a bundle's files {name: bytes} complete and consistent; ImportFormatError names file and problem."""
    where = lambda name: f"{label}:{name}"  # noqa: E731 - the place named in every message
    if MANIFEST not in files:
        raise ImportFormatError(label, None, f"not a run bundle: no {MANIFEST} "
                                             f"(made by `infersight export bundle`)")
    raw = _json(files[MANIFEST], where(MANIFEST))
    if isinstance(raw, dict) and raw.get("bundle_version") not in (None, BUNDLE_VERSION):
        raise ImportFormatError(where(MANIFEST), None, f"bundle_version {raw.get('bundle_version')!r} is not "
                                                       f"supported (this infersight reads version {BUNDLE_VERSION})")
    manifest = _validate(BundleManifest, raw, where(MANIFEST))
    runs = []
    for entry in manifest.runs:
        contents = {}
        for name in run_files():
            full = f"{entry.folder}/{name}"
            if name not in entry.files or full not in files:
                raise ImportFormatError(where(full), None, "missing from the bundle (every run needs its four cards "
                                                           "and two logs)")
            _check_file(files[full], entry.files[name], where(full))
            contents[name] = files[full]
        runs.append(_run(contents, entry.uuid, lambda name, f=entry.folder: where(f"{f}/{name}")))
    size = sum(len(data) for data in files.values())
    return Bundle(Path(label), manifest, hashlib.sha256(files[MANIFEST]).hexdigest(), tuple(runs), size)


# -- the files: a folder or an archive, every name checked --------------------------------------------

def _read_files(path: Path, limits: Limits) -> dict[str, bytes]:
    if path.is_dir():
        return _folder(path)
    if not path.is_file():
        raise ImportFormatError(str(path), None, "no such bundle (give a folder, .zip, .tar or .tar.gz)")
    if path.stat().st_size > limits.max_bytes:
        raise BundleTooLarge(str(path), None, f"{path.stat().st_size} bytes, more than the {limits.max_bytes} "
                                              f"a bundle may have")
    if zipfile.is_zipfile(path):
        with path.open("rb") as source:
            return _zip(source, str(path), limits)
    try:
        return _tar(path, limits)
    except tarfile.TarError as exc:
        raise ImportFormatError(str(path), None, f"not a run bundle: neither a folder, a zip nor a tar archive "
                                                 f"({exc})") from None


def _safe(name: str, label: str) -> str:
    """The member name if it stays inside the bundle; a path traversal is refused."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise ImportFormatError(label, None, f"unsafe name {name!r} in the archive (absolute or with '..': "
                                             f"a path traversal); refusing the whole bundle")
    return str(pure)


def _within(sizes: list[int], label: str, limits: Limits) -> None:
    """BundleTooLarge if an archive's members (their unpacked sizes) exceed the limits."""
    if len(sizes) > limits.max_files:
        raise BundleTooLarge(label, None, f"{len(sizes)} files, more than the {limits.max_files} "
                                          f"a bundle may hold")
    if sum(sizes) > limits.max_unpacked_bytes:
        raise BundleTooLarge(label, None, f"{sum(sizes)} bytes unpacked, more than the {limits.max_unpacked_bytes} "
                                          f"a bundle may hold")


def _folder(root: Path) -> dict[str, bytes]:
    out = {}
    for file in sorted(root.rglob("*")):
        name = file.relative_to(root).as_posix()
        if file.is_symlink():
            raise ImportFormatError(str(root), None, f"{name} is a symbolic link; a bundle holds plain files only")
        if file.is_file():
            out[name] = file.read_bytes()
    return out


def _zip(source: BinaryIO, label: str, limits: Limits) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(source) as zf:
            members = [info for info in zf.infolist() if not info.is_dir()]
            _within([info.file_size for info in members], label, limits)
            for info in members:
                name = _safe(info.filename, label)
                if name in out:
                    raise ImportFormatError(label, None, f"{name!r} is in the archive twice")
                out[name] = zf.read(info)  # at most file_size bytes, CRC checked
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise ImportFormatError(label, None, f"damaged zip archive: {exc}") from None
    return out


def _tar(path: Path, limits: Limits) -> dict[str, bytes]:
    out = {}
    try:
        with tarfile.open(path, "r:*") as tf:
            members = tf.getmembers()
            _within([m.size for m in members if m.isreg()], str(path), limits)
            for member in members:
                name = _safe(member.name, str(path))
                if member.isdir():
                    continue
                if not member.isreg():
                    raise ImportFormatError(str(path), None, f"{member.name!r} in the archive is a link or device; "
                                                             f"a bundle holds plain files only")
                out[name] = tf.extractfile(member).read()
    except (EOFError, OSError, zipfile.BadZipFile) as exc:
        raise ImportFormatError(str(path), None, f"damaged tar archive: {exc}") from None
    return out


# -- one run ------------------------------------------------------------------------------------------

def _check_file(data: bytes, expected: Any, where: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != expected.size_bytes or digest != expected.sha256:
        raise ImportFormatError(where, None, f"sha256 {digest} ({len(data)} bytes) differs from the manifest's "
                                             f"{expected.sha256} ({expected.size_bytes} bytes): damaged or changed")


def _run(contents: dict[str, bytes], uuid: str, where: Any) -> BundledRun:
    run = _validate(RunFile, _json(contents["run.json"], where("run.json")), where("run.json"))
    if run.uuid != uuid:
        raise ImportFormatError(where("run.json"), None, f"uuid {run.uuid} differs from the manifest's {uuid}")
    cards = {}
    for kind in CARD_KINDS:
        name = f"cards/{kind}.json"
        card = _json(contents[name], where(name))
        _validate(CARD_MODELS[kind], card, where(name))
        digest = card_hash(card)
        if digest != run.cards.get(kind):
            raise ImportFormatError(where(name), None, f"card hash {digest} (recomputed) differs from the run's "
                                                       f"{kind} card hash {run.cards.get(kind)}: the card was changed")
        cards[kind] = card
    _check_identity(run, cards, where("run.json"))
    perf = _validate(PerformanceFile, _json(contents["performance.json"], where("performance.json")),
                     where("performance.json"))
    records = _records(contents["performance.npz"], perf, where("performance.npz"))
    accuracy = _validate(AccuracyFile, _json(contents["accuracy.json"], where("accuracy.json")), where("accuracy.json"))
    if accuracy.records != len(accuracy.samples):
        raise ImportFormatError(where("accuracy.json"), None, f"records says {accuracy.records}, but "
                                                              f"{len(accuracy.samples)} samples are listed")
    return BundledRun(run, cards, perf, records, accuracy)


def _check_identity(run: RunFile, cards: dict[str, dict[str, Any]], where: str) -> None:
    task, model = cards["task"]["metadata"], cards["model"]
    checks = [("task_name", run.task_name, task["name"]), ("task_version", run.task_version, task["version"]),
              ("model_variant", run.model_variant, model["variant"]),
              ("backend_name", run.backend_name, cards["backend"]["backend"])]
    for field, value, card_value in checks:
        if value != card_value:
            raise ImportFormatError(where, None, f"{field} {value!r} differs from its card's {card_value!r}")


def _records(data: bytes, perf: PerformanceFile, where: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ImportFormatError(where, None, f"damaged per-query records: {exc}") from None
    known = set(PERF_COLUMNS + OPTIONAL_PERF_COLUMNS)
    if sorted(arrays) != sorted(perf.columns) or not set(PERF_COLUMNS) <= set(arrays) or not set(arrays) <= known:
        raise ImportFormatError(where, None, f"columns {sorted(arrays)} differ from performance.json's "
                                             f"{sorted(perf.columns)} or from the store's {sorted(known)}")
    for name, arr in arrays.items():
        if arr.ndim != 1 or arr.dtype.kind not in "iu" or len(arr) != perf.records:
            raise ImportFormatError(where, None, f"column {name}: {len(arr)} {arr.dtype} values, but "
                                                 f"performance.json says {perf.records} int64 records")
    return arrays


# -- parsing ------------------------------------------------------------------------------------------

def _json(data: bytes, where: str) -> Any:
    """A bundle's JSON file through the guarded loader (UTF-8, size, depth, duplicate keys, finite numbers)."""
    try:
        return load_json(decode_utf8(data, where), where, with_lines=False)[0]
    except CardError as exc:
        placed = re.match(r"(\d+): (.*)", str(exc).removeprefix(where + ":").lstrip(), re.S)
        line, problem = (int(placed[1]), placed[2]) if placed else (None, str(exc))
        raise ImportFormatError(where, line, problem) from None


def _validate(model: Any, data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ImportFormatError(where, None, "\n" + format_errors(exc, where)) from None
