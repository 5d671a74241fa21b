"""The price and power catalogue: a user-editable YAML or CSV file of system name -> prices and power.

YAML (format version 1):

    version: 1
    defaults: {lifetime_years: 4, tariff_usd_per_kwh: 0.15, utilisation: 0.7, example: true}
    systems:
      - system_name: NVIDIA H200 (8x H200-SXM-141GB, TensorRT)   # as `infersight runs` shows it
        purchase_price_usd: 300000
        lifetime_years: 4
        tdp_w: 10200
        example: true

CSV: one row per system, a header of CatalogEntry's field names (system_name first); no defaults.
An entry matches candidates by `system_name`, or by `system_id` where it gives one (MLPerf's
'<submitter>/<system folder>', for names several submissions share). A `system_name` with `*` (any
text) or `?` (one character) is a pattern, tried when no entry names the system exactly, first listed
first: `"* [1 CPU]"` prices every machine measured here with its run pinned to one CPU. Validation is strict: unknown
fields, negative or zero prices, a purchase price without a lifetime, duplicate systems and entries
that give neither price nor power are errors naming the file and line.
Format version history: 1 (2027-01): first version.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from runner.cards._base import StrictModel, format_errors, load_yaml_with_lines
from runner.loading import read_text
from runner.errors import CardError, EngineError

__all__ = ["CatalogEntry", "CatalogDefaults", "Catalog", "load_catalog", "EXAMPLE_CATALOG", "price_columns"]

EXAMPLE_CATALOG = Path(__file__).resolve().parent / "catalog_example.yaml"


class CatalogEntry(StrictModel):
    """Prices and power of one system (units in the names)."""

    system_name: str = Field(min_length=1, description="The system's name as the candidates show it.")
    system_id: str | None = Field(default=None, description="MLPerf '<submitter>/<system folder>' where several "
                                                           "systems share a system_name.")
    price_per_hour_usd: float | None = Field(default=None, gt=0, description="Rental price per hour, USD.")
    purchase_price_usd: float | None = Field(default=None, gt=0, description="Purchase price, USD.")
    lifetime_years: float | None = Field(default=None, gt=0, le=30, description="Amortisation period, years.")
    power_w: float | None = Field(default=None, gt=0, description="Typical power under load, watts.")
    tdp_w: float | None = Field(default=None, gt=0, description="Thermal design power, watts (used when no "
                                                              "measured or typical power is known).")
    example: bool = Field(default=False, description="The figures are examples, not quotes.")
    note: str = ""

    @model_validator(mode="after")
    def _gives_something(self) -> CatalogEntry:
        if all(v is None for v in (self.price_per_hour_usd, self.purchase_price_usd, self.power_w, self.tdp_w)):
            raise ValueError("gives no price_per_hour_usd, purchase_price_usd, power_w or tdp_w")
        return self


class CatalogDefaults(StrictModel):
    """Assumptions for every entry: lifetime where an entry gives none, tariff and utilisation."""

    lifetime_years: float | None = Field(default=None, gt=0, le=30)
    tariff_usd_per_kwh: float | None = Field(default=None, ge=0)
    utilisation: float | None = Field(default=None, gt=0, le=1)
    example: bool = False


# Catalog.lookup's index: entries by system_id, by system_name, and (entry, compiled pattern) of pattern entries
_Index = tuple[dict[str, CatalogEntry], dict[str, CatalogEntry], list[tuple[CatalogEntry, re.Pattern[str]]]]


class Catalog(StrictModel):
    """A validated catalogue; `source` (not a field) is the file it was read from."""

    version: Literal[1] = 1
    defaults: CatalogDefaults = CatalogDefaults()
    systems: tuple[CatalogEntry, ...] = ()
    _source: str = PrivateAttr(default="")
    _index: _Index | None = PrivateAttr(default=None)

    @property
    def source(self) -> str:
        """The file this catalogue was read from ('' when built in code)."""
        return self._source

    @property
    def is_example(self) -> bool:
        """Whether any figure used from it is marked as an example."""
        return self.defaults.example or any(e.example for e in self.systems)

    def lookup(self, system_name: str, system_id: str | None = None) -> CatalogEntry | None:
        """The entry for a system: the one naming its system_id, else the one naming its system_name, else
        the first pattern entry its system_name matches."""
        return _find(self._lookup_index(), system_name, system_id)

    def _lookup_index(self) -> _Index:
        """Entries by system_id and by system_name, and the entries whose system_name holds `*` or `?` (in file
        order) with their compiled patterns: built once."""
        if self._index is None:
            patterns = [(e, re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                                               for c in e.system_name), re.S))
                        for e in self.systems if not e.system_id and ("*" in e.system_name or "?" in e.system_name)]
            self._index = ({e.system_id: e for e in reversed(self.systems) if e.system_id},
                           {e.system_name: e for e in reversed(self.systems) if not e.system_id}, patterns)
        return self._index

    def figures(self, names: list[str], ids: list[str | None]) -> np.ndarray:
        """(len(names), 6) floats per system: price_per_hour_usd, purchase_price_usd, lifetime_years, power_w,
        tdp_w, example (1.0/0.0); NaN where unknown or not in the catalogue."""
        example, lifetime = self.defaults.example, self.defaults.lifetime_years
        index = self._lookup_index()
        out = []
        for name, system_id in zip(names, ids):
            e = _find(index, name, system_id)
            out.append((np.nan,) * 6 if e is None else (
                e.price_per_hour_usd, e.purchase_price_usd, lifetime if e.lifetime_years is None else e.lifetime_years,
                e.power_w, e.tdp_w, e.example or example))
        return np.array(out, dtype=float).reshape(len(out), 6)

    def lifetime(self, entry: CatalogEntry) -> float | None:
        """An entry's lifetime in years, or the default."""
        return entry.lifetime_years if entry.lifetime_years is not None else self.defaults.lifetime_years


def _find(index: _Index, system_name: str, system_id: str | None) -> CatalogEntry | None:
    """Catalog.lookup over its index."""
    by_id, by_name, patterns = index
    found = (by_id.get(system_id) if system_id else None) or by_name.get(system_name)
    if found is None:
        found = next((e for e, pattern in patterns if pattern.fullmatch(system_name)), None)
    return found


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalogue (.yaml/.yml or .csv); EngineError naming file:line and field."""
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"{path}: no such catalogue file")
    try:
        data, lines = _read_csv(path) if path.suffix.lower() == ".csv" else load_yaml_with_lines(path)
    except CardError as exc:
        raise EngineError(str(exc)) from None
    if not isinstance(data, dict):
        raise EngineError(f"{path}:1: expected a mapping with 'systems' (a list of entries)")
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        raise EngineError(format_errors(exc, str(path), lines)) from None
    _check(catalog, str(path), lines)
    catalog._source = str(path)
    return catalog


def _read_csv(path: Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    """CSV rows as {'systems': [...]} with the line of every cell; empty cells are left out."""
    known = set(CatalogEntry.model_fields)
    try:
        with io.StringIO(read_text(path), newline="") as handle:  # the guarded read: UTF-8, size
            reader = csv.DictReader(handle)
            unknown = [c for c in reader.fieldnames or [] if c not in known]
            if unknown or "system_name" not in (reader.fieldnames or []):
                problem = f"unknown column(s) {', '.join(unknown)}" if unknown else "no system_name column"
                raise EngineError(f"{path}:1: {problem}; the columns are {', '.join(CatalogEntry.model_fields)}")
            rows, lines = [], {}
            for index, row in enumerate(reader):
                if None in row:
                    raise EngineError(f"{path}:{reader.line_num}: more cells than columns")
                rows.append({k: v.strip() for k, v in row.items() if v is not None and v.strip()})
                lines[("systems", index)] = reader.line_num
                lines.update({("systems", index, k): reader.line_num for k in row})
    except (OSError, csv.Error) as exc:
        raise EngineError(f"{path}: cannot read as CSV: {exc}") from None
    return {"systems": rows}, lines


def _check(catalog: Catalog, source: str, lines: dict[tuple, int]) -> None:
    """Cross-entry checks: duplicate systems, purchase prices without a lifetime."""
    problems, seen = [], {}
    for index, entry in enumerate(catalog.systems):
        where = f"{source}:{lines.get(('systems', index), '?')}"
        key = (entry.system_name, entry.system_id)
        if key in seen:
            problems.append(f"{where}: systems.{index}: {entry.system_name!r} is listed twice (first at line "
                            f"{lines.get(('systems', seen[key]), '?')})")
        seen.setdefault(key, index)
        if entry.purchase_price_usd is not None and catalog.lifetime(entry) is None:
            problems.append(f"{where}: systems.{index}.purchase_price_usd: needs lifetime_years (in the entry or "
                            f"under defaults) to be amortised")
    if problems:
        raise EngineError("\n".join(problems))


def price_columns(frame: pd.DataFrame, catalog: Catalog | None) -> dict[str, Any]:
    """Per candidate: price_per_hour_usd, purchase_price_usd, lifetime_years, power_w (+ _lo/_hi) as float
    arrays, price_example (bool), price_source and power_source (categoricals). The catalogue wins over the
    system card's own price fields; power is the measured figure, else the catalogue's power_w, the card's
    power_w, the catalogue's tdp_w, in that order. Lookups run once per distinct system."""
    codes, ids = pd.factorize(frame["system_id"], sort=False)
    names = frame["system"].take(_first_index(codes, len(ids))).tolist()
    rows = catalog.figures(names, list(ids)) if catalog is not None else np.full((len(ids), 6), np.nan)
    hourly, purchase, lifetime, typical, tdp, example = (np.take(column, codes) for column in rows.reshape(-1, 6).T)
    from_catalog = np.isfinite(hourly) | np.isfinite(purchase)
    card_hourly, card_purchase = _floats(frame, "card_price_per_hour_usd"), _floats(frame, "card_purchase_price_usd")
    from_card = ~from_catalog & (np.isfinite(card_hourly) | np.isfinite(card_purchase))
    label = f"catalogue {Path(catalog.source).name}" if catalog is not None and catalog.source else "catalogue"
    example = (example == 1.0) & from_catalog
    source = np.select([example, from_catalog, from_card], [1, 2, 3], 0)
    out = {"price_per_hour_usd": np.where(from_catalog, hourly, card_hourly),
           "purchase_price_usd": np.where(from_catalog, purchase, card_purchase),
           "lifetime_years": lifetime, "price_example": example,
           "price_source": pd.Categorical.from_codes(source, ["", label + " (EXAMPLE figure)", label, "system card"])}
    out.update(_power(frame, typical, tdp, label))
    return out


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A column as floats; all NaN when the frame has no such column."""
    return frame[column].to_numpy(dtype=float) if column in frame else np.full(len(frame), np.nan)


def _first_index(codes: np.ndarray, count: int) -> np.ndarray:
    """The first row of each code (codes from pd.factorize, 0..count-1)."""
    first = np.zeros(count, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # repeated indices: the last write (first row) wins
    return first


def _power(frame: pd.DataFrame, typical: np.ndarray, tdp: np.ndarray, label: str) -> dict[str, Any]:
    measured, card = _floats(frame, "power_w"), _floats(frame, "card_power_w")
    value, source = np.full(len(frame), np.nan), np.zeros(len(frame), dtype=np.int8)
    missing = np.ones(len(frame), dtype=bool)
    for code, figure in enumerate((measured, typical, card, tdp), start=1):  # the first known figure wins
        known = missing & np.isfinite(figure)
        np.copyto(value, figure, where=known)
        source[known] = code
        missing &= ~known
        if not missing.any():
            break
    is_measured = np.isfinite(measured)
    lo = np.where(is_measured, _floats(frame, "power_w_lo"), value)
    hi = np.where(is_measured, _floats(frame, "power_w_hi"), value)
    names = ["", "measured", f"{label} power_w", "system card power_w", f"{label} tdp_w"]
    return {"power_w": value, "power_w_lo": np.where(np.isfinite(lo), lo, value),
            "power_w_hi": np.where(np.isfinite(hi), hi, value),
            "power_source": pd.Categorical.from_codes(source, names)}
