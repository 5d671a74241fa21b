"""Numbers as LoadGen prints them: integers, fixed decimals and C++ `%g` scientific notation."""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["parse_number", "as_number", "half_unit", "round_sig", "agree"]

# A whole number, a decimal, or scientific notation as C++ iostreams print doubles (1.26685e+06).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_QUOTES = ("\"", "'")


def parse_number(text: str) -> int | float | None:
    """The number `text` spells exactly (optionally in matching quotes), else None; never raises.

    Integers stay int (latencies in ns exceed float precision beyond 2**53); anything with a
    point or an exponent is a float. NaN, infinity, thousands separators and units are refused.
    """
    if not isinstance(text, str):
        return None
    body = _unquote(text.strip())
    if len(body) > 64 or not _NUMBER.fullmatch(body):
        return None
    if re.fullmatch(r"[+-]?\d+", body):
        return int(body)
    value = float(body)
    return value if math.isfinite(value) else None


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES:
        return text[1:-1].strip()
    return text


def as_number(value: Any) -> int | float | None:
    """A JSON value as a number: finite int/float as is, a numeric string parsed, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return parse_number(value) if isinstance(value, str) else None


def half_unit(text: str) -> float:
    """Half a unit in the last printed place of a number's text: its rounding error bound."""
    body = _unquote(text.strip()).lower()
    mantissa, _, exponent = body.partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (int(exponent or 0) - decimals)


def round_sig(value: float, digits: int = 6) -> float:
    """`value` rounded to `digits` significant digits, as C++ `%g` (default precision 6) prints it."""
    return float(f"{value:.{digits}g}")


def agree(a: float, b: float, slack: float = 0.0) -> bool:
    """Whether two printings of one figure agree: within `slack` plus 6-significant-digit rounding."""
    return abs(a - b) <= slack + 5e-6 * max(abs(a), abs(b)) + 1e-12
