"""Strict pydantic base for cards and settings, card hashing and readable validation errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from runner.errors import CardError

__all__ = ["StrictModel", "canonical_json", "card_hash", "format_errors", "load_yaml_with_lines"]


class StrictModel(BaseModel):
    """Base for every card and settings object: unknown fields are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict, field names as written in files (aliases)."""
        return self.model_dump(mode="json", by_alias=True)

    def card_hash(self) -> str:
        """sha256 of the canonical JSON of this object: equal hashes mean equal configuration."""
        return card_hash(self.to_dict())


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: the form that is hashed and stored."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def card_hash(data: dict[str, Any]) -> str:
    """sha256 hex digest of the canonical JSON of a card dict."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key, keyed by field path."""


def load_yaml_with_lines(path: Path) -> tuple[Any, dict[tuple, int]]:
    """Parse YAML and return (data, {field path tuple: 1-based line}); malformed YAML raises CardError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CardError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        node = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CardError(f"{where}: malformed YAML: {problem}") from None
    lines: dict[tuple, int] = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return data, lines


def _collect_lines(node: yaml.Node, prefix: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (key_node.value,)
            lines[path] = key_node.start_mark.line + 1
            _collect_lines(value_node, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, prefix + (index,), lines)


def format_errors(exc: ValidationError, source: str, lines: dict[tuple, int] | None = None,
                  prefix: tuple = ()) -> str:
    """Turn a pydantic ValidationError into `source:line: field.path: message` lines."""
    out = []
    for err in exc.errors():
        loc = prefix + tuple(err["loc"])
        field = ".".join(str(part) for part in loc) or "(top level)"
        line = _nearest_line(loc, lines or {})
        where = f"{source}:{line}" if line else source
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (not part of the card; check the spelling)"
        out.append(f"{where}: {field}: {msg}")
    return "\n".join(out)


def _nearest_line(loc: tuple, lines: dict[tuple, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def validate_file(model: type[StrictModel], path: Path) -> StrictModel:
    """Load a YAML (or JSON) file into `model`; any problem raises one CardError naming file and line."""
    data, lines = load_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise CardError(f"{path}:1: expected a mapping of fields, found {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CardError(format_errors(exc, str(path), lines)) from None
