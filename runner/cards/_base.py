"""Strict pydantic base for cards and settings, card hashing and readable validation errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from runner.errors import CardError
from runner.loading import load_yaml_with_lines

__all__ = ["StrictModel", "canonical_json", "card_hash", "format_errors", "load_yaml_with_lines"]


class StrictModel(BaseModel):
    """Base for every card and settings object: unknown fields are errors, values are frozen, floats finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

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


def format_errors(exc: ValidationError, source: str, lines: dict[tuple, int] | None = None,
                  prefix: tuple = ()) -> str:
    """Turn a pydantic ValidationError into `source:line: field.path: message` lines."""
    out = []
    for err in exc.errors():
        loc = prefix + tuple(err["loc"])
        field = ".".join(str(part) for part in loc) or "(top level)"
        line = _nearest_line(loc, lines or {})
        where = f"{source}:{line}" if line else source
        msg = err["msg"].removeprefix("Value error, ")
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
