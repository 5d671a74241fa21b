"""Parse LoadGen's mlperf_log_detail.txt: one `:::MLLOG {json}` record per line, key -> value.

Every record is read (effective_* and requested_* settings, seeds, result_* figures,
early_stopping_*, power_begin/power_end, loadgen_version, test_datetime, ...). A key logged
more than once keeps its first value unless it is a message key (warning_generic_message,
generic_message, ...), whose values are collected in `messages`. A non-message key logged
twice with different values is ambiguous: it is dropped from `values` and listed in
`conflicts`. Lines that are not a well-formed record are listed in `bad_lines`, never raised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from runner.errors import CardError, ImportFormatError
from runner.loading import load_published_json

__all__ = ["DetailLog", "parse_detail", "EFFECTIVE_PREFIX"]

_PREFIX = ":::MLLOG"
EFFECTIVE_PREFIX = "effective_"
_MESSAGE_KEYS = ("generic_message", "warning_generic_message", "error_invalid_config", "error_runtime",
                 "error_invalid_test_settings", "error_flush", "loadgen_git_log_message",
                 "loadgen_git_status_message", "loadgen_file_sha1")


@dataclass
class DetailLog:
    """What a detail log holds: values by key, repeated messages, errors and damaged lines."""

    values: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, list[Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    lines: int = 0

    def get(self, key: str, default: Any = None) -> Any:
        """The value logged under `key` (None or `default` if absent or ambiguous)."""
        return self.values.get(key, default)

    def effective_settings(self) -> dict[str, Any]:
        """The effective test settings and seeds (effective_* keys, prefix removed)."""
        return {k[len(EFFECTIVE_PREFIX):]: v for k, v in self.values.items() if k.startswith(EFFECTIVE_PREFIX)}


def parse_detail(text: str | bytes, source: str = "mlperf_log_detail.txt") -> DetailLog:
    """Parse a detail log; raises only ImportFormatError (not one record in the whole text)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    log = DetailLog()
    for number, line in enumerate(text.splitlines(), start=1):
        log.lines = number
        if line.strip():
            _read_line(log, number, line)
    if not log.values and not log.messages:
        raise ImportFormatError(str(source), log.lines or None,
                                "not an MLPerf LoadGen detail log (no ':::MLLOG {json}' record)")
    return log


def _read_line(log: DetailLog, number: int, line: str) -> None:
    """Add one line's record to `log`, or note why the line is not one."""
    stripped = line.strip()
    if not stripped.startswith(_PREFIX):
        log.bad_lines.append((number, "not a ':::MLLOG {json}' record"))
        return
    record = _decode(stripped[len(_PREFIX):])
    if isinstance(record, str):
        log.bad_lines.append((number, record))
        return
    _store(log, record)


def _decode(payload: str) -> dict[str, Any] | str:
    """The record dict of one line, or a sentence saying why there is none."""
    try:
        record = load_published_json(payload, "record", parse_constant=_no_constant)
    except CardError as exc:
        return f"malformed JSON ({str(exc).removeprefix('record').lstrip(':0123456789 ')})"
    if not isinstance(record, dict) or not isinstance(record.get("key"), str) or "value" not in record:
        return "JSON record without a string 'key' and a 'value'"
    if not _finite(record["value"]):
        return f"value of {record['key']!r} is not a finite number"
    return record


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _store(log: DetailLog, record: dict[str, Any]) -> None:
    key, value = record["key"], record["value"]
    metadata = record.get("metadata")
    if isinstance(metadata, dict) and metadata.get("is_error") is True:
        log.errors.append(f"{key}: {value}")
    if key in _MESSAGE_KEYS:
        log.messages.setdefault(key, []).append(value)
    elif key in log.conflicts:
        return
    elif key in log.values and log.values[key] != value:
        del log.values[key]
        log.conflicts.append(key)
    else:
        log.values.setdefault(key, value)
