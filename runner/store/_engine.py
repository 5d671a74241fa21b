"""Database URLs and engines: SQLite tuned for a crash-safe append log, PostgreSQL as is."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import threading
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError, StatementError

from runner.errors import StoreError

__all__ = ["DEFAULT_URL", "resolve_url", "make_engine", "display_url", "translate_errors", "sqlite_read_only",
           "SQLITE_SUFFIXES", "interrupts_deferred"]

DEFAULT_URL = "sqlite:///./infersight.db"

# SQLite's default 4 KiB pages: per-query logs are compressed (a million records take a few MB), and
# an empty store takes a few dozen pages instead of the 1.9 MB that 64 KiB pages made it.
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=30000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
_READ_ONLY_PRAGMAS = ("PRAGMA busy_timeout=30000", "PRAGMA foreign_keys=ON")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".db3")


def resolve_url(url: str | None = None) -> str:
    """The store URL: `url`, else $INFERSIGHT_DB, else ./infersight.db; a bare path means SQLite.

    A path must name a SQLite file: an existing SQLite database (or empty file), or a new file whose
    name ends in .db, .sqlite, .sqlite3 or .db3; anything else is a StoreError (a mistyped URL).
    """
    chosen = url or os.environ.get("INFERSIGHT_DB") or DEFAULT_URL
    if "://" not in chosen:
        path = Path(os.path.expanduser(chosen))
        _check_sqlite_path(chosen, path)
        chosen = "sqlite:///" + str(path)
    return chosen


def _check_sqlite_path(given: str, path: Path) -> None:
    """Refuse a path that is neither an existing file nor a new file with a SQLite suffix.

    An existing file is never opened here: closing any descriptor of a database file drops the POSIX
    locks SQLite holds on it in this process (a store already open would then be unprotected). SQLite
    itself says "file is not a database" on first use, which translate_errors words for the user.
    """
    if path.is_file():
        return
    if path.exists() or path.suffix.lower() not in SQLITE_SUFFIXES:
        raise StoreError(f"{given}: not a database URL (dialect://...) nor a SQLite file path "
                         f"(a new store's name ends in {', '.join(SQLITE_SUFFIXES)})")


def sqlite_read_only(url: str) -> bool:
    """Whether a SQLite URL names an existing file this process may not write (file or folder read-only)."""
    path = _sqlite_path(url)
    if path is None or not path.is_file():
        return False
    return not (_writable(path) and _writable(path.parent))


def _writable(path: Path) -> bool:
    """Writable by this process, and not marked read-only for everyone (root ignores the mode bits)."""
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _sqlite_path(url: str) -> Path | None:
    """The file of a sqlite:/// URL (None for other dialects and in-memory databases)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def display_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def make_engine(url: str, read_only: bool = False) -> Engine:
    """Create the engine; for SQLite install the pragmas and explicit BEGIN handling.

    `read_only` (SQLite): open the file with mode=ro (immutable when its folder is read-only too, as
    SQLite then cannot create the WAL index); no pragma that writes is set.
    """
    if read_only:
        path = _sqlite_path(url)
        flags = "mode=ro" + ("" if _writable(path.parent) else "&immutable=1")
        url = f"sqlite:///file:{path}?{flags}&uri=true"
    try:
        engine = create_engine(url)
    except ArgumentError as exc:
        raise StoreError(f"{display_url(url)}: not a valid database URL: {exc}") from None
    except ModuleNotFoundError as exc:
        raise StoreError(f"{display_url(url)}: database driver not installed "
                         f"(missing Python module {exc.name!r})") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_read_only_on_connect if read_only else _sqlite_on_connect)
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


def _sqlite_read_only_on_connect(dbapi_connection: sqlite3.Connection, _record) -> None:
    """A read-only connection: busy timeout and foreign keys only (journal_mode would write)."""
    dbapi_connection.isolation_level = None
    for pragma in _READ_ONLY_PRAGMAS:
        dbapi_connection.execute(pragma)


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
    if "database or disk is full" in message:
        return f"the disk is full ({message}); free space and try again"
    if "readonly database" in message:
        return f"the store is read-only ({message})"
    if "unable to open database file" in message:
        return f"cannot open the database file ({message}); does its directory exist?"
    return message


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a commit, rollback or connection close runs (main thread only).

    Interrupted there, SQLAlchemy's pool logs a traceback of its own and may leave a transaction
    open; held, the signal takes effect (KeyboardInterrupt, or the previous handler) right after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            elif handler != signal.SIG_IGN:
                os.kill(os.getpid(), caught[0])
