"""A real team server for tests and benchmarks: `infersight serve` (uvicorn) on 127.0.0.1 in a subprocess,
over its own SQLite store, with a user and an API token of a given role; it can be killed and started again
on the same port and store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One server process; `url`, `db` (its store's path), `token` (of the role asked for)."""

    def __init__(self, folder: Path, token: str, env: dict[str, str]) -> None:
        self.folder, self.token, self.env = folder, token, env
        self.db = folder / "server.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(_serve_command(self.db, self.port), cwd=REPO, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited {self.process.returncode}: {self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server not listening after {timeout_s} s: {self.log()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as a crash or a power cut."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120,
                            headers={"Authorization": f"Bearer {token or self.token}"})


def _serve_command(db: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "infersight.cli", "serve", "--db", str(db), "--host", "127.0.0.1",
            "--port", str(port)]


def _token(db: Path, role: str, env: dict[str, str]) -> str:
    """A user of `role` and an API token of theirs, made with the CLI on the server's store."""
    raise NotImplementedError


@contextmanager
def running_server(folder: Path, token_role: str = "submitter") -> Iterator[Server]:
    """A started server over a fresh store in `folder`; killed at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("INFERSIGHT_TOKEN", None)
    server = Server(folder, "", env)
    server.token = _token(server.db, token_role, env)
    server.start()
    try:
        yield server
    finally:
        server.kill()
