"""Database URLs and engines: SQLite tuned for a crash-safe append log, PostgreSQL as is."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError, StatementError

from runner.errors import StoreError

__all__ = ["DEFAULT_URL", "resolve_url", "make_engine", "display_url", "translate_errors"]

DEFAULT_URL = "sqlite:///./infersight.db"

# page_size only takes effect while the file is still empty (it must precede WAL): 64 KiB pages
# store a million-row perf chunk (40 MB) in ~640 pages instead of ~10,000 4 KiB overflow pages.
_SQLITE_PRAGMAS = (
    "PRAGMA page_size=65536",
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def resolve_url(url: str | None = None) -> str:
    """The store URL: `url`, else $INFERSIGHT_DB, else ./infersight.db; a bare path means SQLite."""
    chosen = url or os.environ.get("INFERSIGHT_DB") or DEFAULT_URL
    if "://" not in chosen:
        chosen = "sqlite:///" + os.path.expanduser(chosen)
    return chosen


def display_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str) -> Engine:
    """Create the engine; for SQLite install the pragmas and explicit BEGIN handling."""
    try:
        engine = create_engine(url)
    except ArgumentError as exc:
        raise StoreError(f"{display_url(url)}: not a valid database URL: {exc}") from None
    except ModuleNotFoundError as exc:
        raise StoreError(f"{display_url(url)}: database driver not installed "
                         f"(missing Python module {exc.name!r})") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record) -> None:
    """Set WAL, busy timeout, synchronous=NORMAL and foreign keys on every new connection."""
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (_sqlite_on_begin)
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Writes take the write lock up front (BEGIN IMMEDIATE) so they wait instead of failing."""
    write = conn.get_execution_options().get("infersight_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn database-level failures into one-line StoreErrors naming the URL and the problem."""
    try:
        yield
    except StatementError as exc:
        raise StoreError(f"{display_url(url)}: {_describe(exc.orig)}") from None
    except sqlite3.Error as exc:
        raise StoreError(f"{display_url(url)}: {_describe(exc)}") from None
    except SQLAlchemyError as exc:
        raise StoreError(f"{display_url(url)}: {exc.__class__.__name__}: {exc}") from None


def _describe(orig: BaseException | None) -> str:
    """Say what a DBAPI error means, with the driver's own words."""
    message = " ".join(str(orig).split()) or orig.__class__.__name__
    if not isinstance(orig, sqlite3.Error):
        message = f"{orig.__class__.__name__}: {message}"
    if "file is not a database" in message or "malformed" in message:
        return f"not a readable SQLite database ({message})"
    if "unable to open database file" in message:
        return f"cannot open the database file ({message}); does its directory exist?"
    return message
