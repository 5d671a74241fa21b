"""The one guarded path for files users give us (cards, sweeps, catalogues, system extras, --set values).

Every YAML, JSON or text input is read here and checked before anything else sees it:

- size: at most `MAX_BYTES` (a card or sweep is a few KiB; a catalogue a few hundred);
- encoding: strict UTF-8, the error names the line and column of the first bad byte;
- depth: at most `MAX_DEPTH` nested mappings/sequences (checked on the event stream, so a deep
  file cannot exhaust the parser's recursion);
- aliases: the document as expanded (every alias counted as the nodes it stands for) holds at most
  `MAX_NODES` nodes, so a few-hundred-byte "billion laughs" alias bomb fails in milliseconds;
- keys: a key given twice in one mapping is refused (YAML and JSON would keep the last silently);
- numbers: floats must be finite (.inf, .nan, 1e999 are refused) and integers must fit 64 bits
  (signed or unsigned, the store's range and LoadGen's seeds).

Every error is a CardError `file:line: field.path: problem`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent

from runner.errors import CardError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "read_text", "load_yaml_with_lines", "load_yaml_text",
           "load_json", "load_published_json", "read_published_json", "check_int"]

MAX_BYTES = 16 * 2**20
MAX_DEPTH = 64
MAX_NODES = 200_000
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # signed or unsigned 64-bit
_FLOAT_TAG, _INT_TAG = "tag:yaml.org,2002:float", "tag:yaml.org,2002:int"
_NUMBERS = SafeConstructor()  # only its number constructors are used (they read node.value)


def read_text(path: Path, *, max_bytes: int = MAX_BYTES) -> str:
    """A user's text file as str: readable, at most max_bytes, strict UTF-8; CardError otherwise."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise CardError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise CardError(f"{path}: file is larger than {max_bytes:,} bytes; not an input infersight reads")
    return decode_utf8(raw, str(path))


def decode_utf8(raw: bytes, source: str) -> str:
    """Decode bytes as strict UTF-8; the error names the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise CardError(f"{source}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}); "
                        f"save the file as UTF-8") from None


class _Loader(yaml.SafeLoader):
    """SafeLoader; the documents it builds were checked by `_check_events` and `_Checker` first."""


def load_yaml_with_lines(path: Path) -> tuple[Any, dict[tuple, int]]:
    """Parse a YAML (or JSON) file through the guards; return (data, {field path tuple: 1-based line})."""
    return load_yaml_text(read_text(path), str(path))


def load_yaml_text(text: str, source: str, prefix: tuple = ()) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML text through the guards (depth, aliases, duplicate keys, finite numbers, 64-bit ints).

    `prefix`: the field path the text stands at (`--set KEY=VALUE` parses VALUE at (KEY,)).
    """
    if len(text) > MAX_BYTES:
        raise CardError(f"{source}: text is longer than {MAX_BYTES:,} characters")
    try:
        _check_events(text, source)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            lines: dict[tuple, int] = {}
            if node is not None:
                _Checker(source, lines).walk(node, prefix)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise CardError(f"{where}: malformed YAML: {problem}") from None
    return data, lines


def _check_events(text: str, source: str) -> None:
    """Walk the event stream (no recursion, no nodes built): refuse deep nesting and alias bombs.

    Each open collection keeps [expanded size, anchor]; an alias counts as the expanded size of
    what its anchor names, so the total is the size of the document as a consumer would see it.
    """
    stack: list[list] = []
    anchors: dict[str, int] = {}
    total = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise CardError(f"{source}:{event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels; "
                                f"not a file infersight reads")
            stack.append([1, event.anchor])
            size = 1
        elif isinstance(event, CollectionEndEvent):
            count, anchor = stack.pop()
            if anchor:
                anchors[anchor] = count
            if stack:
                stack[-1][0] += count
            continue
        elif isinstance(event, ScalarEvent):
            size = 1
            if event.anchor:
                anchors[event.anchor] = 1
        elif isinstance(event, AliasEvent):
            size = anchors.get(event.anchor, 1)
        else:
            continue
        if stack and not isinstance(event, CollectionStartEvent):
            stack[-1][0] += size
        total += size
        if total > MAX_NODES:
            raise CardError(f"{source}:{event.start_mark.line + 1}: expands to more than {MAX_NODES:,} values "
                            f"(through aliases); not a file infersight reads")


class _Checker:
    """Walk a composed node graph once (aliases visited once): lines, duplicate keys, numbers."""

    def __init__(self, source: str, lines: dict[tuple, int]) -> None:
        self.source, self.lines, self.seen = source, lines, set()

    def walk(self, node: yaml.Node, path: tuple) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self.seen:
            return
        self.seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            self._mapping(node, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, path + (index,))
        elif isinstance(node, yaml.ScalarNode):
            self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: tuple) -> None:
        keys: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            line = key_node.start_mark.line + 1
            if (key_node.tag, key) in keys and key != "<<":
                raise CardError(f"{self.source}:{line}: {_field(path + (key,))}: key given twice "
                                f"(first on line {keys[key_node.tag, key]}); YAML would keep only the last")
            keys[key_node.tag, key] = line
            child = path + (key,)
            self.lines[child] = line
            self.walk(value_node, child)

    def _scalar(self, node: yaml.ScalarNode, path: tuple) -> None:
        where = f"{self.source}:{node.start_mark.line + 1}: {_field(path)}"
        if node.tag == _FLOAT_TAG:
            value = _NUMBERS.construct_yaml_float(node)
            if not math.isfinite(value):
                raise CardError(f"{where}: {node.value!r} is not a finite number")
        elif node.tag == _INT_TAG:
            check_int(_NUMBERS.construct_yaml_int(node), where)


def check_int(value: int, where: str) -> int:
    """Return value if it fits 64 bits (signed or unsigned); CardError naming `where` otherwise."""
    if not INT_MIN <= value <= INT_MAX:
        raise CardError(f"{where}: integer {_short(value)} is out of range (it must fit 64 bits)")
    return value


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 30 else f"{text[:12]}...{text[-6:]} ({len(text)} digits)"


def _field(path: tuple) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


# -- JSON ---------------------------------------------------------------------------------------

class _Bad:
    """A value json could parse but that we refuse (non-finite, too large); found with its path later."""

    def __init__(self, literal: str, problem: str) -> None:
        self.literal, self.problem = literal, problem


def load_json(text: str, source: str, *, with_lines: bool = True) -> tuple[Any, dict[tuple, int]]:
    """Parse JSON through the same guards as YAML (size, depth, duplicate keys, finite, 64-bit ints);
    return (data, {field path tuple: 1-based line}) as load_yaml_text does (an empty map without
    `with_lines`: the lines are then found only to name a problem)."""
    if len(text) > MAX_BYTES:
        raise CardError(f"{source}: text is longer than {MAX_BYTES:,} characters")
    _check_json_depth(text, source)
    duplicates: dict[int, str] = {}
    written: dict[int, list[tuple[str, Any]]] = {}  # each object's pairs as written, duplicates included

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.setdefault(id(out), key)
            out[key] = value
        written[id(out)] = items
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=lambda c: _Bad(c, "is not a finite number"),
                          parse_float=_json_float, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise CardError(f"{source}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    found: dict[tuple, int] = {}

    def lines() -> dict[tuple, int]:
        if not found:
            found[()] = 1
            _json_lines(data, (), _Cursor(text, written), found)
        return found

    _check_json(data, (), source, text, duplicates, lines)
    return data, lines() if with_lines else {}


def read_published_json(path: Path) -> Any:
    """A JSON file published by others (an MLPerf tree's system, measurements and mapping files), read within
    the size, UTF-8 and depth limits; see load_published_json."""
    return load_published_json(read_text(path), str(path))


def load_published_json(text: str, source: str, **options: Any) -> Any:
    """JSON published by others, within the size and depth limits of load_json but tolerant as a reader of
    published files must be: a key given twice keeps its last value and numbers are the caller's to
    check (json.loads `options`, e.g. parse_constant); CardError `source:line: ...` beyond the limits or
    for malformed JSON."""
    if len(text) > MAX_BYTES:
        raise CardError(f"{source}: text is longer than {MAX_BYTES:,} characters")
    _check_json_depth(text, source)
    try:
        return json.loads(text, **options)
    except json.JSONDecodeError as exc:
        raise CardError(f"{source}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    except ValueError as exc:  # an integer of more digits than Python converts, a refused constant
        raise CardError(f"{source}: malformed JSON: {exc}") from None


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _check_json_depth(text: str, source: str) -> None:
    """Refuse nesting past MAX_DEPTH before json (which recurses) sees it, naming the line."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # too few brackets to nest that deep (a detail log's one-line records)
    bare = _JSON_STRING.sub('""', text).encode()
    codes = np.frombuffer(bare, dtype=np.uint8)
    opens = (codes == ord("[")) | (codes == ord("{"))
    closes = (codes == ord("]")) | (codes == ord("}"))
    depth = np.cumsum(opens.astype(np.int32) - closes.astype(np.int32))
    deep = np.flatnonzero(depth > MAX_DEPTH)
    if deep.size:
        line = bare.count(b"\n", 0, int(deep[0])) + 1
        raise CardError(f"{source}:{line}: nested deeper than {MAX_DEPTH} levels; not a file infersight reads")


class _Cursor:
    """Moves through the JSON text in document order (json keeps it), finding each key's line."""

    def __init__(self, text: str, written: dict[int, list[tuple[str, Any]]]) -> None:
        self.text, self.written, self.at, self.line = text, written, 0, 1

    def line_of_key(self, key: str) -> int | None:
        match = re.compile(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:").search(self.text, self.at)
        if match is None:
            return None
        self.line += self.text.count("\n", self.at, match.start())  # lines counted once, as the cursor moves
        line = self.line
        self.line += self.text.count("\n", match.start(), match.end())
        self.at = match.end()
        return line


def _json_lines(value: Any, path: tuple, cursor: _Cursor, lines: dict[tuple, int]) -> None:
    """The line of every key (of a key given twice: its second place)."""
    if isinstance(value, dict):
        for key, item in cursor.written.get(id(value), value.items()):
            line = cursor.line_of_key(key)
            if line is not None:
                lines[path + (key,)] = line
            _json_lines(item, path + (key,), cursor, lines)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _json_lines(item, path + (index,), cursor, lines)


def _json_float(literal: str) -> float | _Bad:
    value = float(literal)
    return value if math.isfinite(value) else _Bad(literal, "is not a finite number")


def _json_int(literal: str) -> int | _Bad:
    if len(literal) > 21:
        return _Bad(literal, "is out of range (an integer must fit 64 bits)")
    value = int(literal)
    return value if INT_MIN <= value <= INT_MAX else _Bad(literal, "is out of range (an integer must fit 64 bits)")


def _check_json(value: Any, path: tuple, source: str, text: str, duplicates: dict[int, str],
                lines: Callable[[], dict[tuple, int]]) -> None:
    """Refuse the first duplicate key or refused number, naming line and field."""
    if isinstance(value, _Bad):
        line = _line_of(text, value.literal, after_line=_nearest(lines(), path) or 1)
        raise CardError(f"{source}:{line}: {_field(path)}: {value.literal[:30]!s} {value.problem}")
    if isinstance(value, dict):
        if id(value) in duplicates:
            key = duplicates[id(value)]
            line = lines().get(path + (key,), 1)
            raise CardError(f"{source}:{line}: {_field(path + (key,))}: key given twice; JSON would keep the last")
        for key, item in value.items():
            _check_json(item, path + (key,), source, text, duplicates, lines)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, path + (index,), source, text, duplicates, lines)


def _nearest(lines: dict[tuple, int], path: tuple) -> int | None:
    return next((lines[path[:cut]] for cut in range(len(path), 0, -1) if path[:cut] in lines), None)


def _line_of(text: str, token: str, nth: int = 1, after_line: int = 1) -> int:
    """1-based line of the nth occurrence of token in text from line `after_line` on (that line if none)."""
    start = 0
    for _ in range(after_line - 1):
        start = text.find("\n", start) + 1
    matches = list(re.finditer(re.escape(token), text[start:]))
    if not matches:
        return after_line
    return text.count("\n", 0, start + matches[min(nth, len(matches)) - 1].start()) + 1
