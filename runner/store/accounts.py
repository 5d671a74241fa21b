"""Users and API tokens of the team server in the store (tables users and api_tokens, schema version 7).

This module keeps rows only: hashing secrets and deciding what a token may do is the server's
(infersight/api/accounts.py). Every write is its own transaction; methods block on the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update

from runner.errors import AccountError
from runner.store.schema import api_tokens, users
from runner.store.store import Store

__all__ = ["AccountLog"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class AccountLog:
    """Reads and writes the users and api_tokens tables of a Store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- users ------------------------------------------------------------------------------------

    def add_user(self, name: str, role: str) -> dict[str, Any]:
        """Create a user with a role; AccountError if the name is taken."""
        with self.store.transaction() as conn:
            if conn.execute(select(users.c.id).where(users.c.name == name)).first() is not None:
                raise AccountError(f"user {name!r} exists already in {self.store!r}")
            conn.execute(users.insert().values(name=name, role=role, created_at=_now()))
            return dict(conn.execute(select(users).where(users.c.name == name)).mappings().one())

    def get_user(self, name: str) -> dict[str, Any]:
        """One user by name; AccountError naming the known users if there is none."""
        with self.store.transaction(write=False) as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        if row is None:
            known = ", ".join(u["name"] for u in self.list_users()) or "none yet: add one with `infersight user add`"
            raise AccountError(f"no user {name!r} in {self.store!r} (users: {known})")
        return dict(row)

    def list_users(self) -> list[dict[str, Any]]:
        """Every user, by name."""
        with self.store.transaction(write=False) as conn:
            return [dict(r) for r in conn.execute(select(users).order_by(users.c.name)).mappings()]

    # -- tokens -----------------------------------------------------------------------------------

    def add_token(self, *, user_id: int, token_id: str, secret_hash: str, label: str | None,
                  scopes: Sequence[str] | None, expires_at: datetime | None) -> dict[str, Any]:
        """Store a new token's row (its secret already hashed); return the row."""
        values = dict(token_id=token_id, user_id=user_id, label=label, secret_hash=secret_hash,
                      scopes=None if scopes is None else list(scopes), created_at=_now(), expires_at=expires_at)
        with self.store.transaction() as conn:
            conn.execute(api_tokens.insert().values(**values))
        return self.find_token(token_id)

    def find_token(self, token_id: str) -> dict[str, Any] | None:
        """A token's row with its user's name and role (user_name, role), or None."""
        query = (select(api_tokens, users.c.name.label("user_name"), users.c.role)
                 .join(users, users.c.id == api_tokens.c.user_id).where(api_tokens.c.token_id == token_id))
        with self.store.transaction(write=False) as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    def list_tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        """Every token (of one user, if named), oldest first, without the secret hashes."""
        columns = [c for c in api_tokens.c if c.name != "secret_hash"]
        query = (select(*columns, users.c.name.label("user_name"), users.c.role)
                 .join(users, users.c.id == api_tokens.c.user_id).order_by(api_tokens.c.id))
        if user is not None:
            query = query.where(users.c.name == user)
        with self.store.transaction(write=False) as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Mark a token revoked now (a revoked one keeps its first revocation time); return its row."""
        with self.store.transaction() as conn:
            found = conn.execute(update(api_tokens).where(api_tokens.c.token_id == token_id,
                                                          api_tokens.c.revoked_at.is_(None))
                                 .values(revoked_at=_now())).rowcount
        row = self.find_token(token_id)
        if row is None:
            raise AccountError(f"no token {token_id!r} in {self.store!r} (see `infersight token list`)")
        row["newly_revoked"] = bool(found)
        return row
