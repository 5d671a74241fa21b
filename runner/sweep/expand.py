"""Expanding a sweep file into cells: every combination validated and keyed before anything runs.

Bad input (an unknown task, backend, scenario, variant or setting, a value out of range, an
empty dimension) raises one CardError naming the sweep file, line and field path. What this
machine lacks (a backend whose runtime is not installed, an execution provider or device it
does not have, CPUs it does not have) does not stop the sweep: those cells are planned as
skipped, each with the reason.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from runner import registry
from runner.cards._base import card_hash, format_errors
from runner.cpus import format_cpus, parse_cpus, validate_cpus
from runner.errors import CardError, InfersightError, PluginNotFound, PluginUnavailable, SettingsError
from runner.sweep.model import UNPINNED, PluginAxis, SweepFile, load_sweep
from runner.user_tasks import open_task

__all__ = ["Cell", "SweepPlan", "plan_sweep", "expand_settings", "describe", "cell_label", "MAX_CELLS"]

MAX_CELLS = 10_000  # a matrix beyond this is a typo (a sweep of 10,000 one-second runs already takes hours)


@dataclass(frozen=True)
class Cell:
    """One run of the matrix: the request to run, what its key hashes, and why it is skipped (if it is)."""

    key: str
    position: int
    request: dict[str, Any]
    resolved: dict[str, Any]
    label: str
    skip_reason: str | None = None


@dataclass
class SweepPlan:
    """A validated sweep file and its cells, in the order they run."""

    sweep: SweepFile
    path: Path
    file_hash: str
    cells: list[Cell] = field(default_factory=list)


@dataclass
class _Axis:
    """A plugin of the matrix with its validated setting combinations: (raw, resolved, skip reason)."""

    name: str
    combos: list[tuple[dict[str, Any], dict[str, Any], str | None]]


class _Where:
    """Turns a field path of the sweep file into `file:line: path: message` errors."""

    def __init__(self, path: Path, lines: dict[tuple, int]) -> None:
        self.path, self.lines = path, lines

    def error(self, loc: tuple, message: str) -> CardError:
        line = next((self.lines[loc[:cut]] for cut in range(len(loc), -1, -1) if loc[:cut] in self.lines), None)
        where = f"{self.path}:{line}" if line else str(self.path)
        return CardError(f"{where}: {'.'.join(map(str, loc))}: {message}")

    def validation(self, exc: ValidationError, loc: tuple) -> CardError:
        return CardError(format_errors(exc, str(self.path), self.lines, loc))


def plan_sweep(path: Path) -> SweepPlan:
    """Read a sweep file and expand it into cells; raises CardError before anything runs."""
    path = Path(path)
    sweep, lines = load_sweep(path)
    where = _Where(path, lines)
    plan = SweepPlan(sweep, path, hashlib.sha256(path.read_bytes()).hexdigest())
    backends = [_backend(where, i, axis) for i, axis in enumerate(sweep.backends)]
    cpus = [_cpus(where, i, value) for i, value in enumerate(sweep.cpus)]
    tasks = [_task(where, sweep, i, name) for i, name in enumerate(sweep.tasks)]
    _check_size(where, sweep.repeats * len(cpus) * sum(len(b.combos) for b in backends)
                * sum(len(variants) * sum(len(s.combos) for s in scenarios) for _, variants, scenarios in tasks))
    for repeat in range(sweep.repeats):
        for task, variant, scenarios in ((t, v, s) for t, variants, s in tasks for v in variants):
            for backend, (raw_b, res_b, skip_b) in ((b, c) for b in backends for c in b.combos):
                for (cpu_spec, cpu_list, skip_c), scenario in itertools.product(cpus, scenarios):
                    for raw_s, res_s, _ in scenario.combos:
                        request = {"task": task, "backend": backend.name, "scenario": scenario.name,
                                   "model_variant": variant, "backend_settings": raw_b,
                                   "scenario_settings": raw_s, "quick": sweep.quick,
                                   "label": sweep.label or sweep.name, "cpus": cpu_spec}
                        resolved = {**request, "backend_settings": res_b, "scenario_settings": res_s,
                                    "cpus": cpu_list, "repeat": repeat, "label": None}
                        label = _label(request, repeat, sweep.repeats)
                        plan.cells.append(Cell(card_hash(resolved), len(plan.cells), request, resolved, label,
                                               skip_b or skip_c))
    return plan


def _check_size(where: _Where, cells: int, loc: tuple = ()) -> None:
    if cells > MAX_CELLS:
        raise where.error(loc, f"the matrix has {cells:,} cells, more than {MAX_CELLS:,}; split the sweep "
                               f"or give fewer values")


def _task(where: _Where, sweep: SweepFile, i: int, name: str) -> tuple[str, list[str], list[_Axis]]:
    try:
        task = open_task(name)
    except (PluginNotFound, CardError) as exc:
        raise where.error(("tasks", i), str(exc)) from None
    for j, variant in enumerate(sweep.model_variants):
        try:
            task.model_card(variant)
        except InfersightError as exc:
            raise where.error(("model_variants", j), f"task {name}: {exc}") from None
    scenarios = [_scenario(where, task, sweep.quick, k, axis) for k, axis in enumerate(sweep.scenarios)]
    return name, list(sweep.model_variants), scenarios


def _scenario(where: _Where, task: Any, quick: bool, i: int, axis: PluginAxis) -> _Axis:
    try:
        cls = registry.get("scenario", axis.name)
    except (PluginNotFound, PluginUnavailable) as exc:
        raise where.error(("scenarios", i, "name"), str(exc)) from None
    if axis.name not in task.card.scenarios:
        raise where.error(("scenarios", i, "name"), f"task {task.name!r} does not support scenario {axis.name!r}; "
                                                    f"supported: {', '.join(task.card.scenarios)}")
    base = {**(task.card.scenarios.get(axis.name) or {}), **(cls.quick_settings if quick else {})}
    combos = []
    for raw, loc in expand_settings(axis.settings, cls.Settings, ("scenarios", i, "settings"), where):
        try:
            combos.append((raw, cls.Settings.model_validate({**base, **raw}).to_dict(), None))
        except ValidationError as exc:
            raise where.validation(exc, loc) from None
    return _Axis(axis.name, combos)


def _backend(where: _Where, i: int, axis: PluginAxis) -> _Axis:
    try:
        cls = registry.get("backend", axis.name)
    except PluginNotFound as exc:
        raise where.error(("backends", i, "name"), str(exc)) from None
    except PluginUnavailable as exc:
        raw = expand_settings(axis.settings, None, ("backends", i, "settings"), where)
        return _Axis(axis.name, [(r, r, f"{exc}") for r, _ in raw])
    combos = []
    for raw, loc in expand_settings(axis.settings, cls.Settings, ("backends", i, "settings"), where):
        try:
            settings = cls.Settings.model_validate(raw)
        except ValidationError as exc:
            raise where.validation(exc, loc) from None
        combos.append((raw, settings.to_dict(), _unavailable(cls, settings)))
    return _Axis(axis.name, combos)


def _unavailable(cls: Any, settings: Any) -> str | None:
    try:
        cls.check_available(settings)
    except (SettingsError, PluginUnavailable) as exc:
        return str(exc)
    return None


def _cpus(where: _Where, i: int, value: int | str) -> tuple[str | None, list[int] | None, str | None]:
    if value == UNPINNED:
        return None, None, None
    try:
        cpus = parse_cpus(value)
    except SettingsError as exc:
        raise where.error(("cpus", i), f"{exc}; or '{UNPINNED}' for no pinning") from None
    try:
        validate_cpus(cpus)
    except SettingsError as exc:
        return format_cpus(cpus), cpus, str(exc)
    return format_cpus(cpus), cpus, None


def expand_settings(spec: dict[str, Any] | list[dict[str, Any]], model: type[BaseModel] | None, loc: tuple,
                    where: _Where) -> list[tuple[dict[str, Any], tuple]]:
    """Every combination of a settings spec, each with the field path its errors point at."""
    if isinstance(spec, list):
        return [(dict(combo), loc + (j,)) for j, combo in enumerate(spec)]
    keys, values = list(spec), []
    for key in keys:
        values.append(_dimension(spec[key], key, model, loc, where))
    _check_size(where, math.prod(map(len, values)), loc)
    return [(dict(zip(keys, combo)), loc) for combo in itertools.product(*values)]


def _dimension(value: Any, key: str, model: type[BaseModel] | None, loc: tuple, where: _Where) -> list[Any]:
    if not isinstance(value, list):
        return [value]
    if _takes_list(model, key) and not all(isinstance(v, list) for v in value):
        return [value]
    if not value:
        raise where.error(loc + (key,), "an empty list leaves no cells: give at least one value")
    return value


def _takes_list(model: type[BaseModel] | None, key: str) -> bool:
    """Whether the setting's own type is a list (so a flat list is one value, a list of lists a dimension)."""
    info = model.model_fields.get(key) if model is not None else None
    if info is None:
        return False
    ann = info.annotation
    union = typing.get_origin(ann) in (typing.Union, types.UnionType)
    return any(a in (list, tuple) or typing.get_origin(a) in (list, tuple)
               for a in (typing.get_args(ann) if union else (ann,)))


def cell_label(request: dict[str, Any]) -> str:
    """A cell's request in one line: task variant / backend {settings} / scenario {settings} / cpus."""
    def fmt(settings: dict[str, Any]) -> str:
        return " {" + ", ".join(f"{k}={v}" for k, v in settings.items()) + "}" if settings else ""

    return (f"{request['task']} {request['model_variant']} / {request['backend']}{fmt(request['backend_settings'])}"
            f" / {request['scenario']}{fmt(request['scenario_settings'])} / cpus {request['cpus'] or UNPINNED}")


def _label(request: dict[str, Any], repeat: int, repeats: int) -> str:
    return cell_label(request) + (f" / repeat {repeat + 1}" if repeats > 1 else "")


def describe(plan: SweepPlan) -> dict[str, Any]:
    """The plan as plain data (for --plan and --json)."""
    return {"name": plan.sweep.name, "file": str(plan.path), "file_hash": plan.file_hash,
            "cells": [{"key": c.key, "position": c.position, "label": c.label, "request": c.request,
                       "skip_reason": c.skip_reason} for c in plan.cells]}
