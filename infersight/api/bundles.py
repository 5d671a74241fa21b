"""Run bundles: submit one (POST a zip: checked whole, stored once by its sha256), and the two calls of
`infersight sync` (pages of runs after a cursor; those runs as one zip bundle). runner/bundles/ingest.py
does the work; this module parses, calls and serialises."""

from __future__ import annotations

import os
import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from infersight.api.accounts import Principal
from infersight.api.auth import require
from infersight.api.problems import problem_response
from runner.bundles import PAGE_LIMIT, Limits, receive_bundle, sync_page
from runner.errors import BundleTooLarge, ImportFormatError

__all__ = ["MAX_BUNDLE_BYTES_ENV", "BundleReceipt", "SyncPageOut", "bundle_limits", "router"]

router = APIRouter(prefix="/bundles", tags=["bundles"])

MAX_BUNDLE_BYTES_ENV = "INFERSIGHT_MAX_BUNDLE_BYTES"  # lowers the largest bundle the server takes
_SHA = "3b1f0c9a" * 8
_UUID = "3f2b8c1e-5d7a-4e1b-9a0c-2b7d9e4f6a18"


class BundleReceipt(BaseModel):
    """What the server did with a bundle (ids are the server's run ids)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "bundle_sha256": _SHA, "hostname": "lab-box-2", "imported": [101, 102], "already_present": [],
        "records": 20000, "received_before": False}]})
    bundle_sha256: str = Field(description="The sha256 of the bundle's manifest: the bundle's identity.")
    hostname: str = Field(description="The host whose store the bundle was exported from.")
    imported: list[int] = Field(description="Runs this bundle stored.")
    already_present: list[int] = Field(description="Runs of the bundle the server held already (every run when "
                                                   "the bundle was received before).")
    records: int = Field(description="Per-query records stored.")
    received_before: bool = Field(description="True when this bundle was received before: nothing was stored.")


class SyncPageOut(BaseModel):
    """A page of runs for `infersight sync`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "runs": [_UUID], "cursor": "118", "more": False}]})
    runs: list[str] = Field(description="Uuids of finished runs measured by infersight, in the order received.")
    cursor: str = Field(description="Ask for the runs `after` this cursor next.")
    more: bool = Field(description="Whether more runs follow now (a page ends before a run still running).")


def bundle_limits() -> Limits:
    """The size limits of an uploaded bundle ($INFERSIGHT_MAX_BUNDLE_BYTES lowers the bytes received)."""
    limits = Limits()
    value = os.environ.get(MAX_BUNDLE_BYTES_ENV, "")
    return Limits(max_bytes=min(int(value), limits.max_bytes)) if value.isdigit() else limits


_ZIP_BODY = {"requestBody": {"required": True, "description": "The bundle as a zip archive, as "
                             "`infersight export bundle RUN --out b.zip` writes it.",
                             "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}}
_RECEIPT = {201: {"model": BundleReceipt, "description": "The bundle was checked and its runs stored."},
            413: {"description": "The bundle is over the size limits (bytes received, unpacked, files)."},
            422: {"description": "The bundle is not complete and consistent: `errors` names the file."}}


@router.post("", status_code=201, response_model=BundleReceipt, responses=_RECEIPT, openapi_extra=_ZIP_BODY,
             summary="Submit a run bundle")
async def submit(request: Request, principal: Principal = require("bundles:submit")) -> Any:
    """Check a run bundle (four cards and two logs per run: every file's sha256 against the manifest, every
    card's hash against its run, record counts, names inside the bundle, size limits) and store its runs
    not stored yet, in one transaction. A bundle received before (same sha256) stores nothing: 200."""
    limits = bundle_limits()
    with tempfile.SpooledTemporaryFile(max_size=32 << 20) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_bytes:
                raise HTTPException(413, f"the bundle is over the {limits.max_bytes} bytes this server takes")
            spool.write(chunk)
        spool.seek(0)
        try:
            result = await run_in_threadpool(receive_bundle, request.app.state.store, spool,
                                             submitted_by=principal.user, label="bundle", limits=limits)
        except ImportFormatError as exc:
            return _bad_bundle(request, exc)
    body = BundleReceipt.model_validate({k: v for k, v in result.to_dict().items() if k != "path"})
    return JSONResponse(body.model_dump(), status_code=200 if result.received_before else 201)


def _bad_bundle(request: Request, exc: ImportFormatError) -> JSONResponse:
    """413 over the limits, else 422; `errors` names the bundle's file (its pointer: the path in the bundle)."""
    name = exc.file.removeprefix("bundle").removeprefix(":")
    error = {"field": "body" + (f".{name}" if name else ""), "pointer": f"/{name}", "detail": exc.problem.strip()}
    return problem_response(request, 413 if isinstance(exc, BundleTooLarge) else 422, str(exc), errors=[error])


@router.get("", response_model=SyncPageOut, summary="Runs to pull, after a cursor")
def page(request: Request,
         after: Annotated[str | None, Query(pattern=r"^\d{1,18}$", description="The cursor of the previous page "
                                            "(none: from the start).", examples=["118"])] = None,
         limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT, description="Most runs looked at.")] = 100,
         principal: Principal = require("runs:read")) -> SyncPageOut:
    """The finished runs measured by infersight (here or submitted) after `after`, in the order the server
    received them; fetch the ones you lack with GET /export/bundle, then ask after `cursor`."""
    return SyncPageOut.model_validate(sync_page(request.app.state.store, after, limit).to_dict())
