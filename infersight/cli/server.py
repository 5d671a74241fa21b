"""`infersight serve`, `infersight user` and `infersight token`: the team server and its accounts."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from infersight.cli._common import emit_json, json_option, out, with_store

__all__ = ["COMMANDS"]

_ROLES = ("viewer", "submitter", "reviewer", "admin")  # infersight.api.permissions.ROLES (checked by a test)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every "
              "interface; put TLS in front of it).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--db", "db", metavar="URL", default=None,
              help="Store: a SQLAlchemy URL or a SQLite file path (default: $INFERSIGHT_DB, else ./infersight.db).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]), help="uvicorn's log level.")
def serve_cmd(host: str, port: int, db: str | None, log_level: str) -> None:
    """Serve the REST API over a store with uvicorn (OpenAPI at /docs); every request needs a token.

    \b
    Example:
        infersight user add ana --role admin --db team.db
        infersight token create ana --db team.db
        infersight serve --db team.db --port 8000
    """
    import uvicorn

    from infersight.api import create_app

    app = create_app(db)
    out.print(f"serving {app.state.store!r} on http://{host}:{port} (API docs: http://{host}:{port}/docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@click.group("user")
def user_group() -> None:
    """Team-server users: each has one role (viewer, submitter, reviewer or admin).

    \b
    Example:
        infersight user add ana --role admin
        infersight user list
    """


@user_group.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(_ROLES), help="What the user may do (see the README's "
              "permission table).")
@with_store
def user_add_cmd(name: str, role: str, store: Any) -> None:
    """Add user NAME with a role (there is no password: give the user a token).

    \b
    Example:
        infersight user add ana --role submitter
    """
    from infersight.api.accounts import add_user

    add_user(store, name, role)
    out.print(f"user {name} added as {role}; make a token: infersight token create {name}")


@user_group.command("list")
@json_option
@with_store
def user_list_cmd(as_json: bool, store: Any) -> None:
    """List the users and their roles."""
    from runner.store.accounts import AccountLog

    users = AccountLog(store).list_users()
    if as_json:
        emit_json(users)
        return
    for user in users:
        out.print(f"{user['name']}  {user['role']}  added {user['created_at']:%Y-%m-%d}")


@click.group("token")
def token_group() -> None:
    """API tokens of team-server users: scoped, expiring, revocable; only their argon2 hash is stored.

    \b
    Example:
        infersight token create ana --label laptop --days 30
        infersight token list
        infersight token revoke 1a2b3c4d5e6f
    """


@token_group.command("create")
@click.argument("user")
@click.option("--label", default=None, help="What the token is for (shown by `token list`).")
@click.option("--scope", "scopes", multiple=True, metavar="ACTION",
              help="Limit the token to an action (repeatable), e.g. runs:read; default: all the user's role allows.")
@click.option("--days", default=90.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Days until the token expires.")
@click.option("--no-expiry", is_flag=True, help="A token that never expires (revoke it when done).")
@json_option
@with_store
def token_create_cmd(user: str, label: str | None, scopes: tuple[str, ...], days: float, no_expiry: bool,
                     as_json: bool, store: Any) -> None:
    """Make a token for USER and print it once (it cannot be shown again).

    \b
    Example:
        infersight token create ana --scope runs:read --scope runs:export --days 7
    """
    from infersight.api.accounts import create_token

    row, secret = create_token(store, user, label=label, scopes=scopes, days=None if no_expiry else days)
    if as_json:
        emit_json({**row, "token": secret})
        return
    expires = "never" if row["expires_at"] is None else f"{row['expires_at']:%Y-%m-%d %H:%M} UTC"
    out.print(f"token {row['token_id']} for {user} ({row['role']}), expires {expires}:")
    out.print(secret)
    out.print("keep it secret: it is shown only now. Send it as `Authorization: Bearer <token>`.")


@token_group.command("list")
@click.option("--user", default=None, help="Only this user's tokens.")
@json_option
@with_store
def token_list_cmd(user: str | None, as_json: bool, store: Any) -> None:
    """List tokens (never their secrets): id, user, role, scopes, state and expiry."""
    from infersight.api.accounts import list_tokens

    rows = list_tokens(store, user)
    if as_json:
        emit_json(rows)
        return
    table = Table("token", "user", "role", "label", "scopes", "state", "expires")
    for r in rows:
        table.add_row(r["token_id"], r["user_name"], r["role"], r["label"] or "", ", ".join(r["scopes"] or ["all"]),
                      r["state"], "never" if r["expires_at"] is None else f"{r['expires_at']:%Y-%m-%d}")
    out.print(table)


@token_group.command("revoke")
@click.argument("token_id")
@with_store
def token_revoke_cmd(token_id: str, store: Any) -> None:
    """Revoke a token by its id (the 12 characters after `ist_`); it stops working at once."""
    from infersight.api.accounts import revoke_token

    row = revoke_token(store, token_id)
    state = "revoked" if row.pop("newly_revoked") else "was already revoked"
    out.print(f"token {row['token_id']} of {row['user_name']} {state}")


COMMANDS = [serve_cmd, user_group, token_group]
