"""Shared CLI pieces: the --db and --json options, the store opener, output helpers."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from runner.errors import DamagedRowWarning
from runner.store import Store

__all__ = ["db_option", "json_option", "open_store", "with_store", "damaged_rows_said", "emit_json", "out",
           "err"]

# Piped output (not a terminal) gets a wide console rather than rich's default of 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def db_option(fn):
    """--db URL (default: $INFERSIGHT_DB or sqlite:///./infersight.db)."""
    return click.option("--db", "db", metavar="URL", default=None,
                        help="Store: a SQLAlchemy URL or a SQLite file path "
                             "(default: $INFERSIGHT_DB, else ./infersight.db).")(fn)


def json_option(fn):
    """--json: machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)


def open_store(url: str | None) -> Store:
    return Store(url)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def with_store(fn):
    """Open the store named by --db for the command and close it afterwards; a damaged row the command's
    listings left out is said in one line each (`warning: run 7 is damaged: ...`)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, db: str | None = None, **kwargs: Any) -> Any:
        store = open_store(db)
        try:
            with damaged_rows_said():
                return fn(*args, store=store, **kwargs)
        finally:
            store.close()
    return db_option(wrapper)


@contextlib.contextmanager
def damaged_rows_said() -> Iterator[None]:
    """Print each DamagedRowWarning of the block once, as one line on stderr; other warnings go on as usual
    (shown by Python's own rules, once per place: none is collected here)."""
    said: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("always", DamagedRowWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if not issubclass(category, DamagedRowWarning):
                shown(message, category, filename, lineno, file, line)
            elif str(message) not in said:
                said.add(str(message))
                err.print(Text.assemble(("warning: ", "bold yellow"), str(message)))

        warnings.showwarning = show
        yield
