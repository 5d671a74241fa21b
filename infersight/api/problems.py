"""RFC 9457 problem details for every error the server answers, and the handlers that make them.

A body is `{"type", "title", "status", "detail", "instance"}` with media type application/problem+json;
request validation errors add `errors`: one `{"field", "pointer", "detail"}` per problem, where `field` is
the dotted path (`body.limit`, `query.task`) and `pointer` the JSON pointer of the field in its part.
Unexpected failures answer 500 with a short message: the traceback goes to the server's log only.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from runner.errors import (
    InfersightError,
    JobNotFound,
    PluginNotFound,
    RunNotFound,
    StoreError,
)

__all__ = [
    "MEDIA_TYPE",
    "NOT_FOUND",
    "PROBLEM_RESPONSES",
    "PROBLEM_TYPE",
    "FieldProblem",
    "Problem",
    "install_handlers",
    "problem_openapi",
    "problem_response",
]

MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE = "about:blank"
_log = logging.getLogger("infersight.api")


class FieldProblem(BaseModel):
    """One invalid field of a request."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(description="Dotted path of the field: its part (body, query, path, header), then keys.",
                       examples=["query.limit"])
    pointer: str = Field(description="JSON pointer to the field within its part (RFC 6901).", examples=["/limit"])
    detail: str = Field(description="What is wrong with it.", examples=["Input should be less than or equal to 1000"])


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "type": "about:blank", "title": "Not Found", "status": 404,
        "detail": "no run 'abcd' in sqlite:////srv/infersight.db", "instance": "/api/v1/runs/abcd"}]})
    type: str = Field(PROBLEM_TYPE, description="A URI naming the kind of problem; about:blank: the status says it.")
    title: str = Field(description="The HTTP status phrase.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, for a person.")
    instance: str = Field(description="The path of the request that failed.")
    errors: list[FieldProblem] | None = Field(None, description="The invalid fields (validation errors only).")


def problem_response(request: Request, status: int, detail: str, *, errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    """A problem-details response for a request."""
    body: dict[str, Any] = {"type": PROBLEM_TYPE, "title": HTTPStatus(status).phrase, "status": status,
                            "detail": detail, "instance": request.url.path}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _field(error: dict[str, Any]) -> dict[str, str]:
    loc = [str(part) for part in error.get("loc", ())]
    if error.get("type") == "json_invalid":
        loc = loc[:1]  # the body, at a character position: the position goes in the message
    detail = str(error.get("msg", "invalid"))
    if error.get("type") == "json_invalid":
        detail = f"malformed JSON: {error.get('ctx', {}).get('error', 'cannot be parsed')} " \
                 f"(at character {error['loc'][-1] if len(error.get('loc', ())) > 1 else 0})"
    pointer = "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in loc[1:])
    return {"field": ".".join(loc) or "request", "pointer": pointer, "detail": detail}


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [_field(e) for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors) or "the request is not valid"
    return problem_response(request, 422, detail, errors=errors)


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    return problem_response(request, exc.status_code, detail, headers=getattr(exc, "headers", None))


def status_of(exc: InfersightError) -> int:
    """The HTTP status of a user-facing error: unknown names 404, an unusable store 503, the rest 422."""
    if isinstance(exc, (RunNotFound, PluginNotFound, JobNotFound)):
        return 404
    if isinstance(exc, StoreError):
        return 503
    return 422


async def _infersight(request: Request, exc: InfersightError) -> JSONResponse:
    return problem_response(request, status_of(exc), str(exc))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return problem_response(request, 500, f"internal error ({type(exc).__name__}); the server's log has the "
                                          f"details")


def install_handlers(app: FastAPI) -> None:
    """Answer every error of the app as problem details."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(InfersightError, _infersight)
    app.add_exception_handler(Exception, _unexpected)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text}
    for status, text in ((400, "The request cannot be read (a body that is not UTF-8 text, a bad Content-Length)."),
                         (401, "No bearer token, or one that is malformed, unknown, expired or revoked."),
                         (403, "The token's role or scopes do not allow this action."),
                         (413, "The request body is over the endpoint's size limit."),
                         (422, "The request is not valid: `errors` names each field, or it cannot be answered "
                               "as asked (an unknown metric, too few runs, ...)."),
                         (503, "The store cannot be used right now."))}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such run, task or job."}}


def problem_openapi(app: FastAPI) -> None:
    """Make the app's OpenAPI say that every error response is a Problem, as application/problem+json."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI caches it: patching it again changes nothing
        for operation in (op for path in schema["paths"].values() for op in path.values()):
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        return schema

    app.openapi = openapi
