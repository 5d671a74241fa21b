"""Opening a task by name or by the path of its card, and the user's own tasks beside the built-in ones.

A task name is looked up among the task plugins first, then in the user task folders
($INFERSIGHT_TASKS, folders separated by ':', else ./infersight-tasks), each task in its own
sub-folder with a task.yaml. A path (ending in .yaml/.yml, or a folder holding a task.yaml) opens
that card directly. A card that is not a plugin's is opened by its task kind, found through the
registry (kind `task_kind`): the kind whose name is a section of the card (`declarative`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runner import registry
from runner.cards._base import load_yaml_with_lines
from runner.errors import CardError, InfersightError, PluginNotFound
from runner.task import Task

__all__ = ["TASKS_ENV", "DEFAULT_FOLDER", "UserTask", "open_task", "open_card", "is_card_path", "user_folders",
           "user_tasks", "cards_run", "task_rows", "task_detail"]

TASKS_ENV = "INFERSIGHT_TASKS"
DEFAULT_FOLDER = "infersight-tasks"


@dataclass(frozen=True)
class UserTask:
    """A task card in a user task folder: its name, its card and the folder it was found in."""

    name: str
    card: Path
    folder: Path


def is_card_path(text: str) -> bool:
    """Does TASK on the command line name a card (a .yaml path, or a folder with a task.yaml) rather than a name?"""
    return (text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text
            or (Path(text) / "task.yaml").is_file())


def open_task(name_or_path: str) -> Task:
    """The task named (a plugin, else a user task) or the one whose card the path names."""
    if is_card_path(name_or_path):
        return open_card(Path(name_or_path))
    try:
        return registry.get("task", name_or_path)()
    except PluginNotFound:
        found = {t.name: t for t in user_tasks()}
        if name_or_path in found:
            return open_card(found[name_or_path].card)
        known = ", ".join([*registry.names("task"), *sorted(found)]) or "(none)"
        raise PluginNotFound(f"unknown task {name_or_path!r}; known tasks: {known} (user tasks from "
                             f"{', '.join(map(str, user_folders()))}); or give the path of a task card "
                             f"(task.yaml)") from None


def open_card(path: Path) -> Task:
    """Open the task card at `path` (or `path`/task.yaml) by its kind."""
    card = path / "task.yaml" if path.is_dir() else path
    if not card.is_file():
        raise CardError(f"{card}: task card not found")
    data, _ = load_yaml_with_lines(card)
    kinds = registry.names("task_kind")
    kind = next((k for k in kinds if isinstance(data, dict) and k in data), None)
    if kind is None:
        raise CardError(f"{card}:1: the card names no task kind this installation knows (a section named "
                        f"{' or '.join(kinds) or 'after a task kind'}); a plugin's card is run by the task's name")
    return registry.get("task_kind", kind)(card)


def user_folders() -> list[Path]:
    """The user task folders: $INFERSIGHT_TASKS (':'-separated) or ./infersight-tasks."""
    value = os.environ.get(TASKS_ENV, "")
    folders = [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]
    return folders or [Path.cwd() / DEFAULT_FOLDER]


def user_tasks() -> list[UserTask]:
    """Every task card one level down in the user task folders, by its card's name (folder name if unreadable)."""
    found = []
    for folder in user_folders():
        for card in sorted(folder.glob("*/task.yaml")) if folder.is_dir() else []:
            found.append(UserTask(_card_name(card), card, folder))
    return found


def _card_name(card: Path) -> str:
    try:
        data, _ = load_yaml_with_lines(card)
        return str(data["metadata"]["name"])
    except (InfersightError, KeyError, TypeError):
        return card.parent.name


def cards_run(store) -> list[Path]:
    """The task cards runs in `store` were opened from by path (recorded as settings.task_card), newest first."""
    seen: dict[Path, None] = {}
    for run in store.list_runs(limit=None):
        card = (run.settings or {}).get("task_card")
        if card:
            seen.setdefault(Path(card), None)
    return list(seen)


def task_rows(store=None, *, verify: bool = True) -> list[dict]:
    """One row per task for `infersight tasks`, by name: the plugins, the user tasks in the user task folders
    and (with a store) the other cards its runs were opened from; `source` says which. `verify`: check each
    plugin's built model files against their pinned sha256 (else a variant is built when its model card exists)."""
    rows = [_row(info.load()(), f"plugin ({info.distribution})", verify=verify) for info in registry.plugins("task")]
    listed = set()
    for user in user_tasks():
        rows.append(_user_row(user.card, f"user folder: {user.card}"))
        listed.add(user.card.absolute())
    for card in cards_run(store) if store is not None else []:
        if card.absolute() not in listed:
            rows.append(_user_row(card, f"run from path: {card}"))
    return sorted(rows, key=lambda r: (r["name"], r["source"]))


def task_detail(name: str, store=None, *, verify: bool = True) -> dict:
    """One task's row (as task_rows gives it) with its card as a dict under 'card'; PluginNotFound listing
    the known tasks if there is none of that name."""
    rows = task_rows(store, verify=verify)
    row = next((r for r in rows if r["name"] == name), None)
    if row is None:
        raise PluginNotFound(f"unknown task {name!r}; known tasks: {', '.join(r['name'] for r in rows) or '(none)'}")
    path = row["source"].partition(": ")[2]
    task = open_card(Path(path)) if row["source"].startswith(("user folder", "run from path")) else open_task(name)
    return {**row, "card": task.card.to_dict()}


def _user_row(card: Path, source: str) -> dict:
    try:
        return _row(open_card(card), source, verify=False)
    except InfersightError as exc:
        return {"name": _card_name(card) if card.is_file() else card.parent.name, "source": source, "version": "?",
                "category": "?", "quality": "?", "scenarios": [], "variants": {}, "error": str(exc)}


def _row(task: Task, source: str, verify: bool) -> dict:
    """A task's row; without `verify` a variant counts as built when its model card exists (nothing is made)."""
    built = {}
    for variant in task.variants:
        if not verify:
            built[variant] = "built" if task.model_card_path(variant).is_file() else "made on first run"
            continue
        try:
            task.model_card(variant)
            built[variant] = "built"
        except InfersightError as exc:
            built[variant] = str(exc).split(": ", 1)[-1]
    card = task.card
    return {"name": task.name, "source": source, "version": card.metadata.version, "category": card.metadata.category,
            "quality": card.metrics.quality.metric, "scenarios": list(card.scenarios), "variants": built}
