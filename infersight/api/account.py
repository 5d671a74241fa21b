"""GET /api/v1/me: who the bearer token stands for."""

from __future__ import annotations

from fastapi import APIRouter

from infersight.api.accounts import Principal
from infersight.api.auth import require
from infersight.api.models import Me
from infersight.api.permissions import ACTIONS

router = APIRouter(tags=["account"])


@router.get("/me", response_model=Me, summary="Who am I")
def me(principal: Principal = require("account:read")) -> Me:
    """The user, role and token of the request's bearer token, and every action it may use."""
    return Me(user=principal.user, role=principal.role, token_id=principal.token_id,
              scopes=None if principal.scopes is None else sorted(principal.scopes),
              actions=[a for a in ACTIONS if principal.may(a)])
