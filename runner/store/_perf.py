"""Per-query records on disk: each column of a chunk transformed, cut to the byte planes it uses, and
zstd-compressed.

Format of one stored column (schema version 6), a codec tag byte first:
- tag 3 (planes-zstd): then `<B transform, B planes, q base, q start>` and the zstd frame of the
  column's transformed values as byte planes (all first bytes, then all second bytes, ...), only the
  `planes` low planes being stored. The transformed values are stored as offsets from `base` (their
  minimum), so a column of values 5,000,000 +- 100 takes one or two planes. The transforms:
  0 values as they are (sample indices);
  1 delta: each value minus the one before (`start` is the first value; n - 1 deltas are stored):
    query indices, arrival times;
  2 minus the same query's value in its reference column (REFERENCES): issued minus scheduled is the
    issuer's lateness, completed minus issued the latency; both small next to the timestamps.
  The encoder stores each column in whichever transform compresses smallest, so any int64 column round-
  trips exactly (the arithmetic wraps modulo 2**64 both ways).
- tags 1 and 2 are version 5's forms, read only to migrate them: zstd of the 8 byte planes of the deltas
  (1) or of the values (2). Versions 1-4 stored raw little-endian int64 with no tag (migrated by version 5).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import numpy as np
import zstandard
from sqlalchemy import Connection, RowMapping, func, select, update

from runner.errors import StoreError
from runner.store.schema import OPTIONAL_PERF_COLUMNS, PERF_COLUMNS, perf_samples

__all__ = ["encode", "decode", "encode_chunk", "REFERENCES", "write_chunks", "read_chunks", "recode_chunks",
           "perf_arrays"]

V5_DELTA, V5_SHUFFLE, PLANES = 1, 2, 3
VALUES, DELTA, MINUS_REFERENCE = 0, 1, 2
#: The column each column may be stored as a difference from (decoded first: PERF_COLUMNS order).
REFERENCES = {"issued_ns": "scheduled_ns", "completed_ns": "issued_ns", "first_token_ns": "issued_ns"}
_ORDER = PERF_COLUMNS + OPTIONAL_PERF_COLUMNS  # every reference comes before the columns that use it
_HEADER = struct.Struct("<BBqq")
_DTYPE = np.dtype("<i8")
_LEVEL = 1  # on these planes as small as levels 3-9, and the fastest


def encode(values: np.ndarray, reference: np.ndarray | None = None) -> bytes:
    """The stored form of one int64 column (given its reference column's values, when it has one): the
    smallest of its transforms."""
    arr = np.ascontiguousarray(values, dtype=_DTYPE)
    forms = [_packed(VALUES, arr, 0)]
    if arr.size > 1:
        forms.append(_packed(DELTA, np.subtract(arr[1:], arr[:-1]), int(arr[0])))
    if reference is not None and arr.size:
        forms.append(_packed(MINUS_REFERENCE, np.subtract(arr, reference, dtype=_DTYPE), 0))
    return min(forms, key=len)


def _packed(transform: int, body: np.ndarray, start: int) -> bytes:
    base = int(body.min()) if body.size else 0
    offsets = body.view(np.uint64) - np.uint64(base % 2**64)  # wraps: exact whatever the range
    planes = (int(offsets.max()).bit_length() + 7) // 8 if body.size else 0
    header = bytes([PLANES]) + _HEADER.pack(transform, planes, base, start)
    if not planes:
        return header
    cut = offsets.view(np.uint8).reshape(-1, 8)[:, :planes].T.tobytes()
    return header + zstandard.ZstdCompressor(level=_LEVEL).compress(cut)


def decode(data: bytes, n: int, reference: np.ndarray | None = None) -> np.ndarray:
    """An int64 column of n values from its stored form (its reference column's values given for a column
    stored as a difference); ValueError if it does not hold n values."""
    if not data:
        raise ValueError("empty column")
    tag, body = data[0], memoryview(data)[1:]
    if tag == PLANES:
        return _unpacked(body, n, reference)
    if tag in (V5_DELTA, V5_SHUFFLE):
        values = _planes(body, n, 8).view(_DTYPE).reshape(n)
        return np.cumsum(values, dtype=_DTYPE) if tag == V5_DELTA else values
    raise ValueError(f"unknown codec tag {tag}")


def _unpacked(body: memoryview, n: int, reference: np.ndarray | None) -> np.ndarray:
    if len(body) < _HEADER.size:
        raise ValueError("header cut short")
    transform, planes, base, start = _HEADER.unpack_from(body)
    if transform not in (VALUES, DELTA, MINUS_REFERENCE) or planes > 8:
        raise ValueError(f"unknown transform {transform} or {planes} byte planes")
    count = n - 1 if transform == DELTA and n else n
    offsets = _planes(body[_HEADER.size:], count, planes).view(np.uint64).reshape(count)
    values = (offsets + np.uint64(base % 2**64)).view(_DTYPE)
    if transform == DELTA:
        return np.cumsum(np.concatenate([np.array([start], dtype=_DTYPE), values]), dtype=_DTYPE)[:n]
    if transform == MINUS_REFERENCE:
        if reference is None or len(reference) != n:
            raise ValueError("stored as a difference from a reference column that is missing or damaged")
        return np.add(values, reference, dtype=_DTYPE)
    return values


def _planes(frame: memoryview, count: int, planes: int) -> np.ndarray:
    """count rows of 8 bytes whose `planes` low bytes are stored as byte planes in the zstd frame."""
    out = np.zeros((count, 8), dtype=np.uint8)
    size = count * planes
    if size == 0:
        return out
    declared = zstandard.frame_content_size(frame)
    if declared not in (size, -1):
        raise ValueError(f"holds {declared / planes:g} values")
    cut = zstandard.ZstdDecompressor().decompress(frame, max_output_size=size)
    if len(cut) != size:
        raise ValueError(f"holds {len(cut) / planes:g} values")
    out[:, :planes] = np.frombuffer(cut, dtype=np.uint8).reshape(planes, count).T
    return out


def encode_chunk(arrays: Mapping[str, np.ndarray]) -> dict[str, bytes]:
    """The stored form of every column of one chunk (each one that has a reference column present may be
    stored as a difference from it)."""
    return {name: encode(arr, arrays.get(REFERENCES.get(name, ""))) for name, arr in arrays.items()}


def write_chunks(conn: Connection, run_id: int, arrays: Mapping[str, np.ndarray], chunk_rows: int) -> None:
    """Append the columns as new chunks of at most chunk_rows records each (inside the caller's transaction)."""
    n = len(next(iter(arrays.values())))
    first = conn.execute(select(func.coalesce(func.max(perf_samples.c.chunk), -1) + 1)
                         .where(perf_samples.c.run_id == run_id)).scalar_one()
    for number, start in enumerate(range(0, n, chunk_rows), start=first):
        row = encode_chunk({name: arr[start:start + chunk_rows] for name, arr in arrays.items()})
        conn.execute(perf_samples.insert(), [dict(row, run_id=run_id, chunk=number, n=min(chunk_rows, n - start))])


def read_chunks(conn: Connection, run_id: int, where: str) -> dict[str, np.ndarray]:
    """Every per-query record of a run, chunks concatenated in order (empty arrays if none).

    Optional columns are included when every chunk of the run has them; a damaged column raises a
    StoreError naming `where`, the run, the chunk and the column.
    """
    query = select(perf_samples).where(perf_samples.c.run_id == run_id).order_by(perf_samples.c.chunk)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in _ORDER}
    rows = 0
    for row in conn.execute(query).mappings():
        rows += 1
        for name, values in _chunk(row, where).items():
            parts[name].append(values)
    return {name: np.concatenate(chunks) if chunks else np.empty(0, dtype=_DTYPE)
            for name, chunks in parts.items() if name in PERF_COLUMNS or (rows and len(chunks) == rows)}


def _chunk(row: RowMapping, where: str) -> dict[str, np.ndarray]:
    """The columns of one stored chunk, each reference decoded before the columns stored against it."""
    out: dict[str, np.ndarray] = {}
    for name in _ORDER:
        if name in PERF_COLUMNS or row[name] is not None:
            try:
                if row[name] is None:
                    raise ValueError("missing")
                out[name] = decode(row[name], row["n"], out.get(REFERENCES.get(name, "")))
            except (ValueError, zstandard.ZstdError) as exc:
                raise StoreError(f"{where}: perf_samples run {row['run_id']} chunk {row['chunk']} column "
                                 f"{name} is damaged ({exc}; expected {row['n']} values)") from None
    return out


def recode_chunks(conn: Connection, *, raw: bool) -> None:
    """Rewrite every chunk stored in an older form in this one: `raw` (schema version 5) the untagged raw
    int64 columns of versions 1-4, else (version 6) version 5's forms. A damaged chunk is left as it is
    (reading it names it)."""
    keys = conn.execute(select(perf_samples.c.run_id, perf_samples.c.chunk)).all()
    for run_id, chunk in keys:
        key = (perf_samples.c.run_id == run_id, perf_samples.c.chunk == chunk)
        row = conn.execute(select(perf_samples).where(*key)).mappings().one()
        stored = {name: bytes(row[name]) for name in _ORDER if row[name] is not None}
        if raw and all(len(data) == row["n"] * 8 for data in stored.values()):
            arrays = {name: np.frombuffer(data, dtype=_DTYPE) for name, data in stored.items()}
        elif raw or all(data[:1] == bytes([PLANES]) for data in stored.values()):
            continue
        else:
            try:
                arrays = _chunk(row, "migration")
            except StoreError:
                continue
        conn.execute(update(perf_samples).where(*key).values(**encode_chunk(arrays)))


def perf_arrays(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Validate per-query columns and convert them to contiguous little-endian int64."""
    missing, unknown = set(PERF_COLUMNS) - set(columns), set(columns) - set(PERF_COLUMNS + OPTIONAL_PERF_COLUMNS)
    if missing or unknown:
        raise ValueError(f"perf samples need the columns {list(PERF_COLUMNS)} and may have "
                         f"{list(OPTIONAL_PERF_COLUMNS)}, got {sorted(columns)}")
    arrays = {}
    for name in PERF_COLUMNS + tuple(c for c in OPTIONAL_PERF_COLUMNS if c in columns):
        arr = np.asarray(columns[name])
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError(f"perf samples column {name} must be a 1-d integer array, "
                             f"got {arr.dtype} with shape {arr.shape}")
        arrays[name] = np.ascontiguousarray(arr, dtype=np.int64)
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"perf samples columns differ in length: {lengths}")
    return arrays
