"""The team server for tests: `infersight serve` in a subprocess on 127.0.0.1, spoken to with httpx.

`accounts(store)` makes one user per role with a token, and the tokens an API must refuse (expired,
revoked, malformed) or limit (scoped to runs:read only); `ApiServer(url)` starts the real CLI's server
over a store URL and waits until it answers; `sqlite_copy` copies a SQLite store with SQLite's backup API.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from _postgres import free_port
from infersight.api.accounts import add_user, create_token, revoke_token
from infersight.api.permissions import ROLES

REPO = Path(__file__).resolve().parents[1]
BAD_TOKEN = "ist_0123456789ab_" + "x" * 43
_EXPIRY_DAYS = 1 / 86400  # one second


def accounts(store) -> dict[str, str]:
    """{role: token} for a user of each role, plus 'expired', 'revoked', 'scoped' (admin, runs:read only), 'bad'."""
    tokens = {}
    for role in ROLES:
        add_user(store, f"{role}-user", role)
        tokens[role] = create_token(store, f"{role}-user", label="tests")[1]
    expired_row, tokens["expired"] = create_token(store, "viewer-user", days=_EXPIRY_DAYS)
    revoked_row, tokens["revoked"] = create_token(store, "admin-user")
    revoke_token(store, revoked_row["token_id"])
    tokens["scoped"] = create_token(store, "admin-user", scopes=["runs:read"])[1]
    tokens["bad"] = BAD_TOKEN
    wait = (expired_row["expires_at"] - datetime.now(timezone.utc)).total_seconds()
    time.sleep(max(0.0, wait))
    return tokens


def sqlite_copy(source: Path, target: Path) -> Path:
    """A consistent copy of a SQLite store (its WAL included)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return target


class ApiServer:
    """`infersight serve --db URL` on a free loopback port; `client(token)` talks to it."""

    def __init__(self, db_url: str, log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(REPO), "INFERSIGHT_JOBS_DIR": str(log.parent / "jobs")}
        with open(log, "wb") as sink:
            self.proc = subprocess.Popen([sys.executable, "-m", "infersight", "serve", "--db", db_url, "--port",
                                          str(self.port), "--log-level", "warning"], stdout=sink,
                                         stderr=subprocess.STDOUT, env=env, cwd=REPO)
        self._wait()

    def _wait(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not answer within {timeout} s:\n{self.log.read_text()}")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
