"""The CLI's end of the team server: the login kept in a config file, and the remote that `infersight submit`
and `infersight sync` talk to over HTTP (httpx; TLS certificates verified, against `--ca-bundle` for a
private CA). Calls block on the network.

The login file (`$INFERSIGHT_CONFIG`, else `$XDG_CONFIG_HOME/infersight/login.json`, else
`~/.config/infersight/login.json`) holds the server URL, the token and the CA bundle, readable by its owner
only (0600). `INFERSIGHT_TOKEN` overrides the token (and needs no file when a URL is given).
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from runner.bundles import SyncPage
from runner.errors import InfersightError

__all__ = [
    "BUNDLES_PATH",
    "EXPORT_PATH",
    "HttpRemote",
    "Login",
    "ServerError",
    "load_login",
    "login_path",
    "save_login",
]

TOKEN_ENV, CONFIG_ENV = "INFERSIGHT_TOKEN", "INFERSIGHT_CONFIG"
BUNDLES_PATH = "/api/v1/bundles"
EXPORT_PATH = "/api/v1/export/bundle"  # runs as one zip bundle
_RETRIES = 4  # attempts to send one request when the connection fails (uploads are idempotent by bundle hash)


class ServerError(InfersightError):
    """The team server refused a request or cannot be reached: the message says which and why."""


@dataclass(frozen=True)
class Login:
    """Where the team server is and how to prove who we are."""

    url: str
    token: str
    ca_bundle: str | None = None


def login_path() -> Path:
    """The login file's path."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "infersight" / "login.json"


def save_login(login: Login) -> Path:
    """Write the login file, owner-only (0600) from its first byte; return its path."""
    path = login_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(asdict(login), file, indent=1)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def load_login(url: str | None = None, ca_bundle: str | None = None) -> Login:
    """The saved login, the token overridden by INFERSIGHT_TOKEN and the URL / CA bundle by the arguments."""
    saved = _read_login()
    token = os.environ.get(TOKEN_ENV) or (saved.token if saved else None)
    url = url or (saved.url if saved else None)
    if not url or not token:
        raise ServerError("not logged in to a team server: run `infersight login URL --token TOKEN` "
                          f"(or set {TOKEN_ENV} and give --server URL)")
    return Login(url.rstrip("/"), token, ca_bundle or (saved.ca_bundle if saved else None))


def _read_login() -> Login | None:
    path = login_path()
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return Login(str(data["url"]), str(data["token"]), data.get("ca_bundle"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ServerError(f"{path}: not a login file ({exc}); run `infersight login URL --token TOKEN` "
                          f"again") from None


class HttpRemote:
    """The team server's bundle endpoints (infersight/api/bundles.py), as runner.bundles.sync's Remote."""

    def __init__(self, login: Login, *, timeout_s: float = 120.0) -> None:
        self.name = login.url
        if login.ca_bundle and not Path(login.ca_bundle).is_file():
            raise ServerError(f"--ca-bundle {login.ca_bundle}: no such file (give the PEM file of your CA)")
        verify: Any = ssl.create_default_context(cafile=login.ca_bundle) if login.ca_bundle else True
        self.client = httpx.Client(base_url=login.url, verify=verify, timeout=timeout_s,
                                   headers={"Authorization": f"Bearer {login.token}"})

    def __enter__(self) -> HttpRemote:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    def submit(self, data: bytes) -> dict[str, Any]:
        """POST one zip bundle (sent again when the connection fails: the server stores it once)."""
        return self._send("POST", BUNDLES_PATH, content=data, headers={"Content-Type": "application/zip"}).json()

    def page(self, cursor: str | None, limit: int) -> SyncPage:
        params = {"limit": limit} | ({"after": cursor} if cursor is not None else {})
        body = self._send("GET", BUNDLES_PATH, params=params).json()
        return SyncPage(tuple(body["runs"]), body["cursor"], body["more"])

    def fetch(self, uuids: Sequence[str]) -> bytes:
        return self._send("GET", EXPORT_PATH, params={"run": list(uuids)}).content

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(_RETRIES):
            try:
                response = self.client.request(method, path, **kwargs)
                break
            except httpx.TransportError as exc:
                final = isinstance(exc, httpx.UnsupportedProtocol) or "CERTIFICATE_VERIFY_FAILED" in str(exc)
                if final or attempt == _RETRIES - 1:
                    raise ServerError(f"{self.name}: {_transport(exc)}") from None
                time.sleep(0.5 * 2 ** attempt)
        if response.status_code >= 400:
            raise ServerError(f"{self.name}{path}: {response.status_code} {_problem(response)}")
        return response


def _transport(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return f"the server's TLS certificate is not trusted ({text}); for a private CA give --ca-bundle PEM"
    return f"cannot reach the server: {text}"


def _problem(response: httpx.Response) -> str:
    """The problem details' title and detail (RFC 9457), or the body's first line."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip().splitlines()[0] if response.text.strip() else response.reason_phrase
    if isinstance(body, dict):
        return ": ".join(str(body[k]) for k in ("title", "detail") if body.get(k)) or json.dumps(body)
    return json.dumps(body)
