"""Exports: the runs table (CSV, Parquet, JSON), a run's per-query log (Parquet), its MLPerf LoadGen logs (zip)
and run bundles (zip), made by the same functions as `infersight export`."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from infersight.api.accounts import Principal
from infersight.api.auth import require
from infersight.api.problems import NOT_FOUND
from infersight.api.requests import BundleQuery, ExportQuery
from infersight.api.runs import RunRef
from reports.export import queries_table, runs_table, table_bytes
from runner.bundles import send_bundle
from runner.exporters.mlperf import export_run

router = APIRouter(tags=["export"])

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet",
               "json": "application/json"}
_ZIP = "application/zip"


def _file(data: bytes, media_type: str, name: str) -> Response:
    return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _binary(media_type: str, text: str) -> dict:
    return {200: {"content": {media_type: {"schema": {"type": "string", "format": "binary"}}}, "description": text}}


_CSV_EXAMPLE = ("id,uuid,task,model_variant,backend,scenario,system,cores,settings,...\n"
                "42,3f2b8c1e-5d7a-4e1b-9a0c-2b7d9e4f6a18,digits,fp32,onnxruntime,offline,lab-box-1,2,"
                "batch_size=32,...\n")


@router.get("/export/runs", response_class=Response, summary="The runs table",
            responses={200: {"content": {
                MEDIA_TYPES["csv"]: {"schema": {"type": "string"}, "example": _CSV_EXAMPLE},
                MEDIA_TYPES["parquet"]: {"schema": {"type": "string", "format": "binary"}},
                MEDIA_TYPES["json"]: {"schema": {"type": "array", "items": {"type": "object"}}}},
                "description": "One row per run, in the format asked for."}})
def export_runs(request: Request, query: Annotated[ExportQuery, Query()],
                principal: Principal = require("runs:export")) -> Response:
    """Stored runs, newest first, as one flat table: identity, system and cores, settings, dates, validity,
    headline, accuracy, latency and throughput figures, and for MLPerf results their round and submitter."""
    frame = runs_table(request.app.state.store, query.task, limit=query.limit, scenario=query.scenario,
                       backend=query.backend, status=query.status, source=query.source)
    return _file(table_bytes(frame, query.format), MEDIA_TYPES[query.format], f"runs.{query.format}")


@router.get("/runs/{run_ref}/queries.parquet", response_class=Response, summary="A run's per-query log",
            responses={**NOT_FOUND, **_binary(MEDIA_TYPES["parquet"], "One row per query (Parquet).")})
def export_queries(request: Request, run_ref: RunRef, principal: Principal = require("runs:export")) -> Response:
    """The per-query records of a run measured here: issue, scheduled and completed times (ns), latency (ms),
    and the optional per-query columns (stream, first token, output tokens)."""
    frame = queries_table(request.app.state.store, run_ref)
    return _file(table_bytes(frame, "parquet"), MEDIA_TYPES["parquet"], f"run-{frame['run_id'].iat[0]}-queries.parquet")


@router.get("/runs/{run_ref}/mlperf.zip", response_class=Response, summary="A run's MLPerf LoadGen logs",
            responses={**NOT_FOUND, **_binary(_ZIP, "The submission-tree folders of the run (zip).")})
def export_mlperf(request: Request, run_ref: RunRef, principal: Principal = require("runs:export")) -> Response:
    """A complete run measured here as MLPerf's submission tree: mlperf_log_summary.txt and
    mlperf_log_detail.txt, accuracy.txt and the system JSON."""
    with tempfile.TemporaryDirectory(prefix="infersight-mlperf-") as folder:
        export_run(request.app.state.store, run_ref, Path(folder))
        return _file(_zipped(Path(folder)), _ZIP, f"run-{run_ref}-mlperf.zip")


def _zipped(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


@router.get("/export/bundle", response_class=Response, responses={**NOT_FOUND, **_binary(_ZIP, "A run bundle.")},
            summary="A run bundle")
def export_bundle_zip(request: Request, query: Annotated[BundleQuery, Query()],
                      principal: Principal = require("runs:export")) -> Response:
    """Finished runs measured here, each with its four cards and two logs, as one bundle (zip) that
    `infersight import bundle` reads on another machine."""
    return _file(send_bundle(request.app.state.store, query.run), _ZIP, "runs.zip")
