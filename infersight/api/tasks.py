"""Tasks: the built-in ones (plugins), the user tasks, and the cards the store's runs were opened from."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from infersight.api.accounts import Principal
from infersight.api.auth import require
from infersight.api.problems import NOT_FOUND
from runner.user_tasks import task_detail, task_rows

router = APIRouter(prefix="/tasks", tags=["tasks"])


class TaskQuery(BaseModel):
    """How to list tasks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    verify: bool = Field(False, description="Check each built model file against its pinned sha256 (seconds); "
                                            "else a variant counts as built when its model card exists.")

_ROW = {"name": "digits", "source": "plugin (infersight)", "version": "1.0.0", "category": "image_classification",
        "quality": "top1", "scenarios": ["single_stream", "offline", "server"],
        "variants": {"fp32": "built", "int8": "built"}}


@router.get("", response_model=list[dict[str, Any]], summary="List tasks",
            responses={200: {"content": {"application/json": {"example": [_ROW]}}}})
def list_tasks(request: Request, query: Annotated[TaskQuery, Query()],
               principal: Principal = require("tasks:read")) -> list[dict[str, Any]]:
    """Every task with where it comes from, version, category, quality metric, scenarios and whether each
    model variant is built (as `infersight tasks --json`)."""
    return task_rows(request.app.state.store, verify=query.verify)


@router.get("/{name}", response_model=dict[str, Any], summary="One task with its card",
            responses={**NOT_FOUND, 200: {"content": {"application/json": {"example": {**_ROW, "card": {
                "metadata": {"name": "digits", "version": "1.0.0"}}}}}}})
def show_task(request: Request, name: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
                                                          description="The task's name.", examples=["digits"])],
              query: Annotated[TaskQuery, Query()], principal: Principal = require("tasks:read")) -> dict[str, Any]:
    """A task's row (as in the list) and its task card."""
    return task_detail(name, request.app.state.store, verify=query.verify)
