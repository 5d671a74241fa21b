"""`require(action)`: the one FastAPI dependency every endpoint uses to authenticate and authorise.

It reads the bearer token of the Authorization header, finds its principal (infersight/api/accounts.py)
and checks the permission table (infersight/api/permissions.py): 401 without a usable token, 403 when the
role or the token's scopes do not allow the action. The endpoint gets the Principal.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from infersight.api.accounts import Principal, Unauthenticated, authenticate
from infersight.api.permissions import PERMISSIONS, ROLES

__all__ = ["Requirement", "document_actions", "require", "route_actions"]

_bearer = HTTPBearer(auto_error=False, scheme_name="token",
                     description="An infersight API token: `Authorization: Bearer ist_...` "
                                 "(made by `infersight token create USER`).")


class Requirement:
    """The dependency for one action (its `action` attribute names it, for route_actions)."""

    def __init__(self, action: str) -> None:
        if action not in PERMISSIONS:
            raise ValueError(f"action {action!r} is not in the permission table (infersight/api/permissions.py)")
        self.action = action

    async def __call__(self, request: Request,
                       credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        token = None if credentials is None else credentials.credentials
        try:
            principal = await run_in_threadpool(authenticate, request.app.state.store, token)
        except Unauthenticated as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        if not principal.may(self.action):
            why = (f"role {principal.role!r} may not {self.action!r}" if not PERMISSIONS[self.action] & {principal.role}
                   else f"token {principal.token_id} is not scoped for {self.action!r}")
            raise HTTPException(403, f"{why} (user {principal.user!r})")
        return principal


def require(action: str) -> Any:
    """The dependency an endpoint declares for its action: `principal: Principal = require("runs:read")`."""
    return Depends(Requirement(action))


def route_actions(routes: list[Any], prefix: str = "") -> dict[tuple[str, str], str | None]:
    """{(method, prefix + path): the action its require() names, or None unless exactly one} for a
    router's routes."""
    found: dict[tuple[str, str], str | None] = {}
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        actions = [d.call.action for d in _dependants(route.dependant) if isinstance(d.call, Requirement)]
        for method in route.methods:
            found[(method, prefix + route.path)] = actions[0] if len(actions) == 1 else None
    return found


def _dependants(dependant: Any) -> list[Any]:
    out = []
    for sub in dependant.dependencies:
        out.append(sub)
        out.extend(_dependants(sub))
    return out


def document_actions(app: FastAPI, actions: dict[tuple[str, str], str | None]) -> None:
    """Add to each operation of the app's OpenAPI the action it needs and the roles that may do it
    (`x-infersight-action` and a sentence of its description)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for (method, path), action in actions.items():
            operation = schema["paths"].get(path, {}).get(method.lower())
            if operation is None or action is None or "x-infersight-action" in operation:
                continue
            roles = ", ".join(role for role in ROLES if role in PERMISSIONS[action])
            operation["x-infersight-action"] = action
            operation["description"] = (operation.get("description", "") +
                                        f"\n\nNeeds action `{action}` (roles: {roles}).").strip()
        return schema

    app.openapi = openapi
