"""Per-query records on disk: each column of a chunk delta-encoded, byte-shuffled and zstd-compressed.

Format of one stored column (schema version 5; versions 1-4 stored raw little-endian int64):
a 1-byte codec tag, then
- tag 1 (delta-shuffle-zstd, a column that never decreases: timestamps, query indices): the zstd
  frame of the n int64 deltas (the first value, then each value minus the one before) with their
  bytes shuffled (all first bytes, then all second bytes, ...). Monotonic timestamps become small
  deltas whose high bytes are zeros, which zstd stores in almost nothing;
- tag 2 (shuffle-zstd, any other column: sample indices): the same without the deltas;
- tag 0: raw int64 (what the version-5 migration finds in older stores and converts).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import zstandard
from sqlalchemy import Connection, RowMapping, func, select, update

from runner.errors import StoreError
from runner.store.schema import OPTIONAL_PERF_COLUMNS, PERF_COLUMNS, perf_samples

__all__ = ["encode", "decode", "RAW", "DELTA_ZSTD", "SHUFFLE_ZSTD", "write_chunks", "read_chunks",
           "compress_raw_chunks", "perf_arrays"]

RAW, DELTA_ZSTD, SHUFFLE_ZSTD = 0, 1, 2
_DTYPE = np.dtype("<i8")
_LEVEL = 1  # fastest of the positive levels, and on timestamp deltas as small as level 3


def encode(values: np.ndarray) -> bytes:
    """The stored form of one int64 column: deltas if it never decreases (timestamps), else the values;
    byte-shuffled, zstd-compressed, behind a codec tag."""
    arr = np.ascontiguousarray(values, dtype=_DTYPE)
    tag, body = SHUFFLE_ZSTD, arr
    if arr.size > 1 and bool(np.all(arr[1:] >= arr[:-1])):
        tag, body = DELTA_ZSTD, np.empty_like(arr)
        body[0] = arr[0]
        np.subtract(arr[1:], arr[:-1], out=body[1:])
    shuffled = body.view(np.uint8).reshape(-1, 8).T.tobytes()
    return bytes([tag]) + zstandard.ZstdCompressor(level=_LEVEL).compress(shuffled)


def decode(data: bytes, n: int) -> np.ndarray:
    """An int64 column of n values from its stored form; ValueError if it does not hold n values."""
    if not data:
        raise ValueError("empty column")
    tag, body = data[0], memoryview(data)[1:]
    if tag == RAW:
        raw = np.frombuffer(body, dtype=np.uint8)
    elif tag in (DELTA_ZSTD, SHUFFLE_ZSTD):
        shuffled = zstandard.ZstdDecompressor().decompress(body, max_output_size=max(n * 8, 1))
        if len(shuffled) != n * 8:
            raise ValueError(f"holds {len(shuffled) / 8:g} values")
        raw = np.frombuffer(shuffled, dtype=np.uint8).reshape(8, n).T
    else:
        raise ValueError(f"unknown codec tag {tag}")
    if raw.size != n * 8:
        raise ValueError(f"holds {raw.size / 8:g} values")
    values = np.ascontiguousarray(raw).view(_DTYPE).reshape(n)
    return np.cumsum(values, dtype=_DTYPE) if tag == DELTA_ZSTD else values.copy()


def write_chunks(conn: Connection, run_id: int, arrays: Mapping[str, np.ndarray], chunk_rows: int) -> None:
    """Append the columns as new chunks of at most chunk_rows records each (inside the caller's transaction)."""
    n = len(next(iter(arrays.values())))
    first = conn.execute(select(func.coalesce(func.max(perf_samples.c.chunk), -1) + 1)
                         .where(perf_samples.c.run_id == run_id)).scalar_one()
    for number, start in enumerate(range(0, n, chunk_rows), start=first):
        row = {name: encode(arr[start:start + chunk_rows]) for name, arr in arrays.items()}
        conn.execute(perf_samples.insert(), [dict(row, run_id=run_id, chunk=number, n=min(chunk_rows, n - start))])


def read_chunks(conn: Connection, run_id: int, where: str) -> dict[str, np.ndarray]:
    """Every per-query record of a run, chunks concatenated in order (empty arrays if none).

    Optional columns are included when every chunk of the run has them; a damaged column raises a
    StoreError naming `where`, the run, the chunk and the column.
    """
    query = select(perf_samples).where(perf_samples.c.run_id == run_id).order_by(perf_samples.c.chunk)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in PERF_COLUMNS + OPTIONAL_PERF_COLUMNS}
    rows = 0
    for row in conn.execute(query).mappings():
        rows += 1
        for name in PERF_COLUMNS + OPTIONAL_PERF_COLUMNS:
            if name in PERF_COLUMNS or row[name] is not None:
                parts[name].append(_column(row, name, where))
    return {name: np.concatenate(chunks) if chunks else np.empty(0, dtype=_DTYPE)
            for name, chunks in parts.items() if name in PERF_COLUMNS or (rows and len(chunks) == rows)}


def _column(row: RowMapping, name: str, where: str) -> np.ndarray:
    try:
        if row[name] is None:
            raise ValueError("missing")
        return decode(row[name], row["n"])
    except (ValueError, zstandard.ZstdError) as exc:
        raise StoreError(f"{where}: perf_samples run {row['run_id']} chunk {row['chunk']} column {name} is "
                         f"damaged ({exc}; expected {row['n']} values)") from None


def compress_raw_chunks(conn: Connection) -> None:
    """Schema version 5: rewrite every chunk stored raw (versions 1-4) in the compressed form."""
    keys = conn.execute(select(perf_samples.c.run_id, perf_samples.c.chunk)).all()
    names = PERF_COLUMNS + OPTIONAL_PERF_COLUMNS
    for run_id, chunk in keys:
        key = (perf_samples.c.run_id == run_id, perf_samples.c.chunk == chunk)
        row = conn.execute(select(perf_samples).where(*key)).mappings().one()
        values = {name: encode(np.frombuffer(row[name], dtype=_DTYPE)) for name in names
                  if row[name] is not None and len(row[name]) == row["n"] * 8}
        if values:
            conn.execute(update(perf_samples).where(*key).values(**values))


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
