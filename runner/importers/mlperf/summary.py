"""Parse LoadGen's mlperf_log_summary.txt into a dict, whatever the round's wording.

The result has: `scenario`, `mode`, `result_validity` ("VALID"/"INVALID"), `satisfied`
(condition -> bool), `headline` (label, value and text of the first figure after "Mode",
whatever its wording), `values` (every `key : value` line, keys lower-cased with single
spaces, numbers parsed), `texts` (the same values as printed), `percentiles_ns` (kind ->
{percentile: ns}; kinds "latency", "first token latency", "time to output token"; in
MultiStream "latency" is per query), `early_stopping` (section -> {percentile: ns} estimates),
`early_stopping_notes`, `recommendations`, `test_parameters`, `warnings`, `errors`,
`complete` (the closing "errors encountered" line was seen), `bad_lines` ((line, why) for lines
that look damaged), `notes` ((line, text) for LoadGen's free-text lines: v5.x prints "WARNING:
sample_concatenate_permutation was set to true." wrapped over lines without a colon; they are
kept, not a reason to drop the result), `unreadable` ((line, key, text) for figures whose value
is no finite number: "abc", "nan", "1e999"; their `values` entry is None), `lines` and
`value_lines` (key -> line).

Wording by round: v4.0 servers head with "Scheduled samples per second"; v4.1 with "Completed
samples per second" (tokens: "Completed tokens per second", gptj: "... (inferred)"), single
stream with "90th percentile latency (ns)", multi stream with "99th ..."; v5.x writes "90.0th"
and "Early stopping 90.0th percentile estimate", and its Interactive results say "Scenario :
Server". Percentile keys are normalised ("90.0" and "90.00" both become "90").
"""

from __future__ import annotations

import re
from typing import Any

from runner.errors import ImportFormatError
from runner.importers.mlperf._numbers import parse_number

__all__ = ["parse_summary", "normalise_label", "percentile_key"]

_SECTIONS = {"mlperf results summary": "results", "additional stats": "stats",
             "test parameters used": "parameters"}
_BULLET_HEADS = {"early stopping result": "early_stopping", "ttft early stopping result": "ttft",
                 "tpot early stopping result": "tpot", "recommendations": "recommendations"}
_PERCENTILE = re.compile(r"(\d+(?:\.\d+)?) percentile (latency|first token latency|time to output token) \(ns\)")
_ESTIMATE = re.compile(r"early stopping (\d+(?:\.\d+)?)th percentile estimate\s*:\s*(\S+)", re.IGNORECASE)
_COUNT = re.compile(r"(no|\d{1,9}) (warning|error)s? encountered", re.IGNORECASE)
_SATISFIED = re.compile(r"(.+) satisfied")
_FIXED = ("sut name", "scenario", "mode", "result is")
# Labels whose value LoadGen always prints as a number (rates, latencies, counts).
_NUMERIC = re.compile(r"per second|\(ns\)|latency|per query|count|samples|tokens|duration", re.IGNORECASE)


def normalise_label(label: str) -> str:
    """A summary label as a dict key: lower case, single spaces, no surrounding blanks."""
    return " ".join(label.lower().split())


def percentile_key(text: str) -> str:
    """'90', '90.0' and '90.00' all name the 90th percentile: return '90' (99.9 stays '99.9')."""
    return f"{float(text):g}"


def parse_summary(text: str | bytes, source: str = "mlperf_log_summary.txt") -> dict[str, Any]:
    """Parse a summary; raises only ImportFormatError (the text is no LoadGen summary at all)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    parser = _SummaryParser(str(source))
    for number, line in enumerate(text.splitlines(), start=1):
        parser.feed(number, line)
    return parser.finish()


class _SummaryParser:
    """Line-by-line state: the current section and bullet list, and what has been read."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.section = "results"
        self.bullets: str | None = None
        self.out: dict[str, Any] = {
            "scenario": None, "mode": None, "sut_name": None, "result_validity": None, "satisfied": {},
            "headline": None, "values": {}, "texts": {}, "percentiles_ns": {}, "early_stopping": {},
            "early_stopping_notes": {}, "recommendations": [], "test_parameters": {}, "warnings": None,
            "errors": None, "complete": False, "bad_lines": [], "notes": [], "unreadable": [], "value_lines": {},
            "lines": 0, "seen_header": False}

    def feed(self, number: int, line: str) -> None:
        """Read one line (1-based number)."""
        self.out["lines"] = number
        stripped = line.strip()
        if not stripped or set(stripped) == {"="}:
            return
        if "\x00" in line or "\ufffd" in line:
            self.out["bad_lines"].append((number, "unreadable characters"))
            return
        if self._heading(stripped) or self._counts(stripped) or self._bullet(number, line, stripped):
            return
        self._key_value(number, stripped)

    def _heading(self, stripped: str) -> bool:
        key = normalise_label(stripped.rstrip(":"))
        if key in _SECTIONS:
            self.section, self.bullets = _SECTIONS[key], None
            self.out["seen_header"] = True
            return True
        if stripped.endswith(":") and key in _BULLET_HEADS:
            self.bullets = _BULLET_HEADS[key]
            return True
        if key == "per-query latency":
            self.out["per_query_latency"] = True
            return True
        return False

    def _counts(self, stripped: str) -> bool:
        match = _COUNT.match(stripped)
        if not match:
            return False
        count = 0 if match.group(1).lower() == "no" else int(match.group(1))
        self.out[match.group(2).lower() + "s"] = count
        if match.group(2).lower() == "error":
            self.out["complete"] = True
        return True

    def _bullet(self, number: int, line: str, stripped: str) -> bool:
        if self.bullets is None or not line.startswith(" "):
            return False
        if ":" in stripped and not stripped.startswith("*") and self.bullets != "recommendations":
            self.bullets = None  # an indented "key : value" line ends the bullet list
            return False
        target = self.out["recommendations"] if self.bullets == "recommendations" else \
            self.out["early_stopping_notes"].setdefault(self.bullets, [])
        body = stripped.lstrip("*").strip()
        if stripped.startswith("*") or not target:
            target.append(body)
        else:
            target[-1] += " " + body  # a continuation line of the previous bullet
        self._estimate(number, body)
        return True

    def _estimate(self, number: int, body: str) -> None:
        match = _ESTIMATE.search(body)
        if not match:
            return
        value = parse_number(match.group(2))
        if not isinstance(value, int) or value < 0:
            self.out["bad_lines"].append((number, f"early-stopping estimate {match.group(2)!r} is not a count of ns"))
            return
        section = "latency" if self.bullets == "early_stopping" else self.bullets
        self.out["early_stopping"].setdefault(section, {})[percentile_key(match.group(1))] = value

    def _key_value(self, number: int, stripped: str) -> None:
        label, sep, raw = stripped.partition(":")
        key, raw = normalise_label(label), raw.strip()
        if not sep or not key or key == "warning":
            self.out["notes"].append((number, stripped))  # LoadGen's free text (warnings and their wrapped lines)
            return
        self.bullets = None
        if self.section == "parameters":
            self.out["test_parameters"][key] = _value(raw)
            return
        if self._fixed(key, raw) or self._satisfied(key, raw):
            return
        self._figure(number, key, raw)

    def _fixed(self, key: str, raw: str) -> bool:
        if key not in _FIXED:
            return False
        field = {"sut name": "sut_name", "result is": "result_validity"}.get(key, key)
        if field == "result_validity" and raw not in ("VALID", "INVALID"):
            self.out["bad_lines"].append((self.out["lines"], f"'Result is' says {raw!r}, not VALID or INVALID"))
            return True
        self.out[field] = raw
        self.out["seen_header"] = True
        return True

    def _satisfied(self, key: str, raw: str) -> bool:
        match = _SATISFIED.fullmatch(key)
        if not match:
            return False
        verdict = raw.lower()
        self.out["satisfied"][match.group(1)] = True if verdict == "yes" else False if verdict == "no" else None
        return True

    def _figure(self, number: int, key: str, raw: str) -> None:
        value = _value(raw)
        if isinstance(value, str) and _NUMERIC.search(key):
            self.out["unreadable"].append((number, key, raw))
            value = None
        values, texts = self.out["values"], self.out["texts"]
        self.out["value_lines"].setdefault(key, number)
        if key in values and values[key] != value:
            self.out["bad_lines"].append((number, f"{key!r} printed twice with different values "
                                                  f"({texts[key]!r}, {raw!r})"))
            values[key] = None  # ambiguous: neither printing is trusted
        elif key not in values:
            values[key], texts[key] = value, raw
        if self.out["headline"] is None and self.section == "results" and self.out["mode"] is not None:
            self.out["headline"] = {"label": key, "value": value, "text": raw}
        match = _PERCENTILE.fullmatch(key)
        if match and isinstance(value, int):
            self.out["percentiles_ns"].setdefault(match.group(2), {})[percentile_key(match.group(1))] = value

    def finish(self) -> dict[str, Any]:
        """The parsed dict; ImportFormatError if nothing in the text is a LoadGen summary."""
        out = self.out
        if not out.pop("seen_header") or out["scenario"] is None:
            raise ImportFormatError(self.source, out["lines"] or None,
                                    "not an MLPerf LoadGen summary (no 'Scenario :' line)")
        return out


def _value(raw: str) -> Any:
    """A printed value: its number if it is one, else the text."""
    number = parse_number(raw)
    return raw if number is None else number
