"""`infersight tasks`, `plugins` and `system`: what is installed and what this machine is."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from infersight.cli._common import damaged_rows_said, db_option, emit_json, json_option, open_store, out
from runner import registry
from runner.cards import capture_system
from runner.store import resolve_url
from runner.user_tasks import task_rows

__all__ = ["COMMANDS"]


@click.command("plugins")
@json_option
def plugins_cmd(as_json: bool) -> None:
    """List task, backend, scenario and summary plugins with the distribution and version providing each.

    \b
    Example:
        infersight plugins
    """
    rows = [{"kind": i.kind, "name": i.name, "distribution": i.distribution, "version": i.version,
             "target": i.target} for kind in registry.KINDS for i in registry.plugins(kind)]
    if as_json:
        emit_json(rows)
        return
    table = Table("kind", "name", "distribution", "version", "target")
    for r in rows:
        table.add_row(r["kind"], r["name"], r["distribution"], r["version"], r["target"])
    out.print(table)


@click.command("tasks")
@json_option
@db_option
def tasks_cmd(as_json: bool, db: str | None) -> None:
    """List tasks: the built-in ones (plugins) and your own: task cards in the user task folders
    (./infersight-tasks or $INFERSIGHT_TASKS) and cards the store's runs were opened from by path
    (when the store exists), with where each comes from, version, category, scenarios and variants.

    \b
    Example:
        infersight tasks
        infersight tasks --db results.db --json
    """
    if db or store_exists(None):
        with open_store(db) as store, damaged_rows_said():
            rows = task_rows(store)
    else:
        rows = task_rows()
    if as_json:
        emit_json(rows)
        return
    table = Table("task", "from", "version", "category", "quality", "scenarios", "variants")
    for r in rows:
        table.add_row(r["name"], r["source"], r["version"], r["category"], r["quality"], ", ".join(r["scenarios"]),
                      ", ".join(f"{v} ({s if s == 'built' else 'not built'})" for v, s in r["variants"].items()))
    out.print(table)


@click.command("system")
@json_option
def system_cmd(as_json: bool) -> None:
    """Show this machine's system card (MLPerf field names) as a run would record it.

    \b
    Example:
        infersight system --json
    """
    card = capture_system()
    data = card.to_dict()
    if as_json:
        emit_json({**data, "hash": card.card_hash()})
        return
    for key, value in data.items():
        if value not in ("", None, {}, []):
            out.print(f"{key:36} {value}")
    out.print(f"{'hash':36} {card.card_hash()}")


def store_exists(url: str | None) -> bool:
    """Whether the default store (or `url`) is something to read: a server URL, or a SQLite file that exists."""
    resolved = resolve_url(url)
    return not resolved.startswith("sqlite:///") or Path(resolved.removeprefix("sqlite:///")).is_file()


COMMANDS = [plugins_cmd, tasks_cmd, system_cmd]
