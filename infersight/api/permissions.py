"""The one permission table of the team server: which roles may do each action.

Every endpoint names its action with `require(action)` (infersight/api/auth.py); a token may further be
limited to some actions (its scopes). To add an endpoint that does something new, add its action here.
"""

from __future__ import annotations

__all__ = ["ACTIONS", "PERMISSIONS", "ROLES", "actions_of", "role_may"]

ROLES: tuple[str, ...] = ("viewer", "submitter", "reviewer", "admin")

_EVERYONE = frozenset(ROLES)
_SUBMITTERS = frozenset({"submitter", "reviewer", "admin"})
_REVIEWERS = frozenset({"reviewer", "admin"})
_ADMINS = frozenset({"admin"})

PERMISSIONS: dict[str, frozenset[str]] = {
    "account:read": _EVERYONE,      # who am I (GET /api/v1/me)
    "runs:read": _EVERYONE,         # query runs, one run with its cards, its per-query log
    "runs:export": _EVERYONE,       # CSV / Parquet / JSON tables, MLPerf logs, run bundles
    "tasks:read": _EVERYONE,        # list and show task cards
    "analysis:read": _EVERYONE,     # recommend, analyse, compare, trend
    "reports:read": _EVERYONE,      # the HTML reports
    "jobs:read": _EVERYONE,         # a job's status and progress
    "jobs:submit": _SUBMITTERS,     # start a run, sweep or peak search on the server
    "jobs:cancel": _SUBMITTERS,     # cancel a job
    "bundles:submit": _SUBMITTERS,  # upload run bundles
    "tasks:write": _REVIEWERS,      # create and update tasks through the registry's rules
    "runs:review": _REVIEWERS,      # accept or reject submitted runs
    "accounts:admin": _ADMINS,      # users and every user's tokens
}
ACTIONS: tuple[str, ...] = tuple(PERMISSIONS)


def role_may(role: str, action: str) -> bool:
    """Whether a role may do an action (unknown actions: no one may)."""
    return role in PERMISSIONS.get(action, ())


def actions_of(role: str) -> tuple[str, ...]:
    """Every action a role may do, in table order."""
    return tuple(action for action in ACTIONS if role_may(role, action))
