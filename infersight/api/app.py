"""The team server's FastAPI app: `create_app(store_url)` (importable for tests), served by `infersight serve`.

Every router lives in its own module of infersight/api exposing `router = APIRouter(...)`; ROUTERS lists
them (adding an endpoint module is one line there). Every endpoint checks its action with `require(...)`
(infersight/api/auth.py) and answers errors as RFC 9457 problem details (infersight/api/problems.py).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from infersight import __version__
from infersight.api.auth import document_actions, route_actions
from infersight.api.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit
from infersight.api.problems import PROBLEM_RESPONSES, install_handlers, problem_openapi
from runner.bundles import Limits
from runner.jobs import JobService
from runner.store import Store

__all__ = ["API_PREFIX", "ROUTERS", "create_app", "endpoint_actions", "routers"]

API_PREFIX = "/api/v1"
# Modules of infersight/api, each with a `router`; their paths are mounted under API_PREFIX.
ROUTERS: tuple[str, ...] = (
    "account",
    "runs",
    "tasks",
    "exports",
    "analysis",
    "reports",
    "bundles",
    "jobs",
)
# larger body limits under a path prefix: bundle uploads (their own limits, runner/bundles/read.py, are checked too)
BODY_LIMITS: dict[str, int] = {f"{API_PREFIX}/bundles": Limits().max_bytes}

_DESCRIPTION = """The infersight team server: query and export runs, tasks, analyses, recommendations and reports
from one results store.

Every endpoint needs a bearer token (`Authorization: Bearer ist_...`), made on the server with
`infersight user add NAME --role ROLE` and `infersight token create NAME`. Roles: viewer, submitter,
reviewer, admin; each endpoint's description names the action it needs. Errors are RFC 9457 problem
details (`application/problem+json`); validation errors list each invalid field under `errors`."""


def routers() -> list[APIRouter]:
    """The router of every module in ROUTERS."""
    return [importlib.import_module(f"infersight.api.{name}").router for name in ROUTERS]


def endpoint_actions() -> dict[tuple[str, str], str | None]:
    """{(method, path): the action of its require()} for every endpoint (None: not exactly one require)."""
    return {key: action for router in routers() for key, action in route_actions(router.routes, API_PREFIX).items()}


def create_app(store_url: str | None = None, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               body_limits: Mapping[str, int] | None = None) -> FastAPI:
    """The app over the store at `store_url` (default: $INFERSIGHT_DB, else ./infersight.db), opened now
    (a StoreError if it cannot be) and closed when the server stops."""
    store = Store(store_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="infersight", version=__version__, description=_DESCRIPTION, lifespan=lifespan,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.store = store
    app.state.jobs = JobService(store)  # fails the jobs of workers that died, starts workers for queued ones
    install_handlers(app)
    problem_openapi(app)
    app.add_middleware(BodyLimit, default=max_body_bytes, limits={**BODY_LIMITS, **(body_limits or {})})
    for router in routers():
        app.include_router(router, prefix=API_PREFIX, responses=PROBLEM_RESPONSES)
    document_actions(app, endpoint_actions())
    return app
