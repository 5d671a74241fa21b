"""A real, throwaway PostgreSQL server for the test session (a pytest plugin: see conftest.py).

`pg_url` (session): starts a private cluster in a temp dir (initdb + pg_ctl, listening only on
127.0.0.1 on a free port and on a unix socket in the temp dir, trust auth) and yields the URL of
an empty database in it; at the end the server is stopped and the dir removed. If
$INFERSIGHT_TEST_PG_URL is set, that URL is used instead and no server is started.

`pg_store_url` (function): a fresh database per test (CREATE DATABASE t_<random>), dropped after.

The server binaries come from the OS (`make postgres` installs them; `make test` runs it first).
If they are missing the fixture FAILS, naming that step: a skip would hide a missing install.
PostgreSQL refuses to run as root, so as root the server runs as the `postgres` OS user.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV_URL = "INFERSIGHT_TEST_PG_URL"
DB_NAME = "infersight_test"
SUPERUSER = "postgres"
OS_USER = "postgres"  # the unprivileged user the server runs as when the tests run as root
INSTALL_HINT = ("the PostgreSQL server binaries (initdb, pg_ctl) are not installed: run `make postgres` "
                "(or `make test`, which runs it) to install them, or set "
                f"{ENV_URL} to a scratch PostgreSQL database URL")


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl, else PATH's."""
    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit()) or (0,)

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True):
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").is_file():
            return bindir
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One private cluster: `start()` runs initdb + pg_ctl start, `stop()` stops it and removes the dir."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self.owner = pwd.getpwnam(OS_USER)
            except KeyError:
                raise RuntimeError(f"running as root but there is no {OS_USER!r} OS user to run "
                                   f"PostgreSQL as (it refuses root): run `make postgres`") from None
        self.dir = Path(tempfile.mkdtemp(prefix="infersight-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = 0
        self.running = False
        if self.as_root:
            os.chown(self.dir, self.owner.pw_uid, self.owner.pw_gid)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", OS_USER, "--", *cmd]
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        # cwd: the server user may not be able to read the directory pytest runs in.
        proc = subprocess.run(cmd, cwd=self.dir, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
                               + (f"\nserver log:\n{log}" if log else ""))
        return proc

    def start(self) -> None:
        # --no-sync and fsync=off: a throwaway cluster needs no durability, only speed.
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync", "--no-instructions")
        last: Exception | None = None
        for _ in range(5):  # the free port may be taken between free_port() and the bind: retry
            self.port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       "-c max_connections=50")
            try:
                self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                          "-l", str(self.log), "-o", options)
            except RuntimeError as exc:
                last = exc
                continue
            self.running = True
            return
        raise RuntimeError(f"could not start PostgreSQL: {last}")

    def stop(self) -> None:
        """Stop the server (fast, then immediate) and remove the dir; safe to call twice."""
        if self.running:
            try:
                self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data))
            except (RuntimeError, subprocess.TimeoutExpired):
                try:
                    self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data))
                except (RuntimeError, subprocess.TimeoutExpired):
                    pass
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


def _autocommit_engine(url: str):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    try:
        import psycopg  # noqa: F401
    except ModuleNotFoundError:
        pytest.fail("the PostgreSQL driver is not installed: pip install -e '.[test]' "
                    "(or `make test`) installs psycopg", pytrace=False)
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _sql(url: str, *statements: str) -> None:
    engine = _autocommit_engine(url)
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a database on a real PostgreSQL server, for the whole session."""
    external = os.environ.get(ENV_URL)
    if external:
        yield external
        return
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    try:
        server = PostgresServer(bindir)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    atexit.register(server.stop)  # in case the session dies before the fixture's teardown
    try:
        server.start()
        _sql(server.url("postgres"), f'CREATE DATABASE "{DB_NAME}"')
    except BaseException as exc:
        server.stop()
        if isinstance(exc, RuntimeError):
            pytest.fail(str(exc), pytrace=False)
        raise
    try:
        yield server.url(DB_NAME)
    finally:
        server.stop()
        atexit.unregister(server.stop)


@pytest.fixture
def pg_store_url(pg_url: str) -> Iterator[str]:
    """URL of a brand-new, empty database on the session's server, dropped after the test.

    With an external $INFERSIGHT_TEST_PG_URL whose user may not create databases, that database's
    public schema is emptied (dropped and recreated) instead.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ProgrammingError

    name = f"t_{secrets.token_hex(6)}"
    try:
        _sql(pg_url, f'CREATE DATABASE "{name}"')
    except ProgrammingError:  # e.g. no CREATEDB privilege on an external server
        _sql(pg_url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public")
        yield pg_url
        return
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _sql(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
