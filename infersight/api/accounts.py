"""Accounts of the team server: users with one role, and scoped, expiring, revocable API tokens.

A token is `ist_<token id>_<secret>`, shown once when made. The store keeps the token id and the argon2
hash of the secret (argon2-cffi), never the secret. `authenticate` checks a presented token on every
request: its row is read each time (so a revocation counts at once), while argon2 runs once per token and
process (a verified token is remembered by its SHA-256).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from infersight.api.permissions import ACTIONS, ROLES, actions_of, role_may
from runner.errors import AccountError
from runner.store import Store
from runner.store.accounts import AccountLog

__all__ = [
    "TOKEN_PREFIX",
    "Principal",
    "Unauthenticated",
    "add_user",
    "authenticate",
    "create_token",
    "list_tokens",
    "revoke_token",
]

TOKEN_PREFIX = "ist"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_TOKEN = re.compile(rf"{TOKEN_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{20,128}})")
# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): a token's secret has 256 random bits, so
# the hash guards a leaked store, not a guessable password; stronger settings only cost every first request.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the user, their role, and the token used (with its scopes, None: all)."""

    user: str
    role: str
    token_id: str
    scopes: frozenset[str] | None

    def may(self, action: str) -> bool:
        """Whether this principal may do an action: the role allows it and the token's scopes include it."""
        return role_may(self.role, action) and (self.scopes is None or action in self.scopes)


class Unauthenticated(Exception):
    """A request whose bearer token is missing, malformed, unknown, expired or revoked (HTTP 401)."""


def add_user(store: Store, name: str, role: str) -> dict[str, Any]:
    """Create a user; AccountError for a bad name, an unknown role, or a name taken."""
    if not _NAME.fullmatch(name):
        raise AccountError(f"user name {name!r}: use 1-64 letters, digits and . _ @ - (starting with a "
                           f"letter or digit)")
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return AccountLog(store).add_user(name, role)


def create_token(store: Store, user: str, *, label: str | None = None, scopes: Sequence[str] = (),
                 days: float | None = 90) -> tuple[dict[str, Any], str]:
    """Make a token for a user, valid `days` days (None: no expiry), limited to `scopes` (empty: all its
    role allows); return (its row, the token text: shown once, never stored)."""
    account = AccountLog(store).get_user(user)
    _check_scopes(account, scopes)
    if days is not None and days <= 0:
        raise AccountError(f"token lifetime must be positive days, not {days}")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    expires = None if days is None else datetime.now(UTC) + timedelta(days=days)
    row = AccountLog(store).add_token(user_id=account["id"], token_id=token_id, secret_hash=_HASHER.hash(secret),
                                      label=label, scopes=sorted(set(scopes)) or None, expires_at=expires)
    return _public(row), f"{TOKEN_PREFIX}_{token_id}_{secret}"


def _check_scopes(account: dict[str, Any], scopes: Sequence[str]) -> None:
    for scope in scopes:
        if scope not in ACTIONS:
            raise AccountError(f"scope {scope!r} is not an action; actions: {', '.join(ACTIONS)}")
        if not role_may(account["role"], scope):
            raise AccountError(f"user {account['name']!r} is a {account['role']}, which may not {scope!r}; "
                               f"a {account['role']} may: {', '.join(actions_of(account['role']))}")


def list_tokens(store: Store, user: str | None = None) -> list[dict[str, Any]]:
    """Every token (of one user if named) with its state: active, expired or revoked."""
    return [_public(row) for row in AccountLog(store).list_tokens(user)]


def revoke_token(store: Store, token_id: str) -> dict[str, Any]:
    """Revoke a token by its id (the part after `ist_`); revoking twice is harmless."""
    return _public(AccountLog(store).revoke_token(token_id.removeprefix(f"{TOKEN_PREFIX}_")[:12]))


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A token row without its hash, with its state."""
    out = {k: v for k, v in row.items() if k != "secret_hash"}
    out["state"] = _state(row, datetime.now(UTC))
    return out


def _state(row: dict[str, Any], now: datetime) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired"
    return "active"


class _Verified:
    """SHA-256 digests of tokens whose secret argon2 verified, with the hash verified against (bounded)."""

    def __init__(self, size: int = 4096) -> None:
        self.size, self.seen, self.lock = size, {}, threading.Lock()

    def check(self, token: str, secret: str, secret_hash: str) -> bool:
        key = hashlib.sha256(token.encode()).digest()
        with self.lock:
            if self.seen.get(key) == secret_hash:
                return True
        try:
            _HASHER.verify(secret_hash, secret)
        except (VerificationError, InvalidHashError):
            return False
        with self.lock:
            if len(self.seen) >= self.size:
                self.seen.clear()
            self.seen[key] = secret_hash
        return True


_VERIFIED = _Verified()


def authenticate(store: Store, token: str | None) -> Principal:
    """The principal a bearer token stands for; Unauthenticated saying why not."""
    if not token:
        raise Unauthenticated("no bearer token: send the header `Authorization: Bearer ist_...` "
                              "(make a token with `infersight token create USER`)")
    match = _TOKEN.fullmatch(token)
    row = None if match is None else AccountLog(store).find_token(match[1])
    if row is None or not _VERIFIED.check(token, match[2], row["secret_hash"]):
        raise Unauthenticated("the bearer token is not a valid infersight token")
    state = _state(row, datetime.now(UTC))
    if state != "active":
        when = row["revoked_at"] if state == "revoked" else row["expires_at"]
        raise Unauthenticated(f"token {row['token_id']} {state} at {when.isoformat(timespec='seconds')}")
    scopes = None if row["scopes"] is None else frozenset(row["scopes"])
    return Principal(user=row["user_name"], role=row["role"], token_id=row["token_id"], scopes=scopes)
