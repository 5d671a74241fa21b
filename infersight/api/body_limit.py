"""An ASGI middleware refusing request bodies over a size limit (413 problem details), before they are read whole.

The limit applies to the declared Content-Length and, for bodies sent without one (chunked), to the bytes
received so far; `limits` may give a larger limit under a path prefix (bundle uploads).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infersight.api.problems import problem_response

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimit"]

DEFAULT_MAX_BODY_BYTES = 1 << 20


class BodyLimit:
    """Raise HTTPException(413) (answered as problem details) for a body over its path's limit."""

    def __init__(self, app: ASGIApp, default: int = DEFAULT_MAX_BODY_BYTES,
                 limits: Mapping[str, int] | None = None) -> None:
        self.app, self.default, self.limits = app, default, dict(limits or {})

    def limit_for(self, path: str) -> int:
        """The body limit of a path: the longest matching prefix's, else the default."""
        matches = [prefix for prefix in self.limits if path.startswith(prefix)]
        return self.limits[max(matches, key=len)] if matches else self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        too_big = f"the request body is over this endpoint's limit of {limit} bytes"
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            bad = not declared.isdigit()
            await self._refuse(scope, receive, send, 400 if bad else 413,
                               "Content-Length is not a number" if bad else too_big)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, too_big)
            return message

        await self.app(scope, counted, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        """Answer with problem details at once, without reading the body."""
        response = problem_response(Request(scope), status, detail)
        await response(scope, receive, send)
