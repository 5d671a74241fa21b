"""Every table of the results store, as SQLAlchemy Core `Table` objects in one MetaData.

Schema version history (the version is the number of the last migration applied,
see runner/store/migrations.py):

- 1: schema_version; the card tables tasks, models, backends, systems (keyed by hash);
  runs; perf_samples (columnar chunks of raw little-endian int64 bytes);
  accuracy_samples (one row per sample).
- 2: imported_runs: provenance of runs imported from outside (an MLPerf round, division,
  submitter, system, source folder, compliance verdicts, power, accuracy.txt), one row per
  imported run, unique by (round, source_path).
- 3: sweeps (one row per sweep: name, sweep file and its hash, status), sweep_cells (one row
  per cell of its matrix: key, resolved request, status and reason, attempts, the run that
  counts) and sweep_runs (every run a sweep started, failed attempts included, with its cell).
- 4: optional per-query columns of perf_samples (stream_id for multi_stream, first_token_ns and
  output_tokens for streaming generation; NULL in runs that do not record them) and
  peak_searches (one row per peak-QPS search; its probes are runs with runs.search_id set).
- 5: perf_samples columns compressed: each holds a codec tag byte and the zstd frame of the column's
  byte-shuffled int64 deltas (runner/store/_perf.py); the migration converts the raw chunks of 1-4.
- 6: perf_samples columns in a smaller form (codec tag 3): a column may be stored as deltas or as the
  difference from its reference column (issued - scheduled, completed - issued), as offsets from its
  minimum in only the byte planes they use; the migration rewrites version 5's chunks.
- 7: users (a name and one role) and api_tokens (argon2 hash of each token's secret, scopes, expiry,
  revocation) for the team server (infersight/api); index ix_runs_system_hash (runs queried by system).
- 8: jobs: runs, sweeps and peak searches queued to run on a machine (runner/jobs): kind, the request,
  status, progress, the runs it made, who submitted it, the worker process and when.
- 9: submissions (one row per run bundle received, by upload or import, unique by the bundle's sha256:
  a retried upload finds it and stores nothing twice) and sync_state (per server, how far `infersight
  sync` has pulled and pushed, so an interrupted sync goes on where it stopped).

Types are portable between SQLite and PostgreSQL: JSON lives in Text columns as
canonical JSON (`JSONText`), timestamps are timezone-aware UTC datetimes (`UTCDateTime`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import numpy as np
from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer,
                        LargeBinary, MetaData, String, Table, Text, UniqueConstraint)
from sqlalchemy.types import TypeDecorator

__all__ = ["metadata", "schema_version", "tasks", "models", "backends", "systems", "CARD_TABLES",
           "runs", "perf_samples", "accuracy_samples", "imported_runs", "sweeps", "sweep_cells", "sweep_runs",
           "SWEEP_TABLES", "PERF_COLUMNS", "OPTIONAL_PERF_COLUMNS", "peak_searches", "users", "api_tokens",
           "ACCOUNT_TABLES", "RUNS_SYSTEM_INDEX", "JSONText", "UTCDateTime", "canonical_json", "Damaged", "jobs",
           "submissions", "sync_state"]

metadata = MetaData()


def _json_default(value: Any) -> Any:
    """Make numpy scalars and arrays JSON-serialisable; anything else is an error."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store a {type(value).__name__} as JSON: {value!r}")


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace (the same form runner.cards hashes)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


class JSONText(TypeDecorator):
    """Text column holding canonical JSON; Python None is stored as SQL NULL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> str | None:
        """Encode a Python value as canonical JSON text."""
        return None if value is None else canonical_json(value)

    def process_result_value(self, value: str | None, dialect) -> Any:
        """Decode JSON text back into Python values; text that is not JSON comes back as `Damaged`."""
        if value is None:
            return None
        try:
            return json.loads(value)
        except ValueError:
            return Damaged(value)


class Damaged:
    """What a JSONText column holds when its text is not JSON; the store refuses rows holding one."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Damaged({self.text[:40]!r})"


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetime on every backend (SQLite stores it naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        """Convert an aware datetime to UTC; naive datetimes are refused."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        """Return an aware datetime in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UTCDateTime, nullable=False),
)


def _card_table(name: str) -> Table:
    """A card table: each distinct card stored once, keyed by the sha256 of its canonical JSON."""
    return Table(
        name, metadata,
        Column("hash", String(64), primary_key=True),
        Column("name", String(255), nullable=False),
        Column("card", JSONText, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
    )


tasks = _card_table("tasks")
models = _card_table("models")
backends = _card_table("backends")
systems = _card_table("systems")
CARD_TABLES: dict[str, Table] = {"task": tasks, "model": models, "backend": backends, "system": systems}

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("task_name", String(255), nullable=False),
    Column("task_version", String(64), nullable=False),
    Column("model_variant", String(255), nullable=False),
    Column("backend_name", String(255), nullable=False),
    Column("scenario", String(64), nullable=False),
    Column("task_hash", String(64), ForeignKey("tasks.hash"), nullable=False),
    Column("model_hash", String(64), ForeignKey("models.hash"), nullable=False),
    Column("backend_hash", String(64), ForeignKey("backends.hash"), nullable=False),
    Column("system_hash", String(64), ForeignKey("systems.hash"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("validity", String(16)),
    Column("validity_reasons", JSONText),
    Column("headline_metric", String(255)),
    Column("headline_value", Float),
    Column("headline_units", String(64)),
    Column("summary", JSONText),
    Column("settings", JSONText),
    Column("quick", Boolean, nullable=False),
    Column("compliant", Boolean, nullable=False),
    Column("accuracy_metric", String(255)),
    Column("accuracy_value", Float),
    Column("accuracy_target", Float),
    Column("accuracy_passed", Boolean),
    Column("provenance", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("error", Text),
    Column("search_id", Integer),
    Column("label", Text),
)
Index("ix_runs_started_at", runs.c.started_at)
Index("ix_runs_task_backend_scenario", runs.c.task_name, runs.c.backend_name, runs.c.scenario)
Index("ix_runs_status", runs.c.status)
RUNS_SYSTEM_INDEX = Index("ix_runs_system_hash", runs.c.system_hash)  # version 7: the API's system filter

# Per-query records, one row per chunk: each array column holds n int64 values, compressed
# (versions 5 and 6, runner/store/_perf.py; raw little-endian bytes before). Later migrations may add more
# nullable array columns (streaming timings).
perf_samples = Table(
    "perf_samples", metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True, autoincrement=False),
    Column("chunk", Integer, primary_key=True, autoincrement=False),
    Column("n", BigInteger, nullable=False),
    Column("sample_index", LargeBinary, nullable=False),
    Column("query_index", LargeBinary, nullable=False),
    Column("scheduled_ns", LargeBinary, nullable=False),
    Column("issued_ns", LargeBinary, nullable=False),
    Column("completed_ns", LargeBinary, nullable=False),
    Column("stream_id", LargeBinary),        # version 4: which concurrent stream issued the query
    Column("first_token_ns", LargeBinary),   # version 4: streaming generation, first token's arrival
    Column("output_tokens", LargeBinary),    # version 4: streaming generation, tokens generated
)
PERF_COLUMNS: tuple[str, ...] = tuple(c.name for c in perf_samples.columns
                                      if isinstance(c.type, LargeBinary) and not c.nullable)
OPTIONAL_PERF_COLUMNS: tuple[str, ...] = tuple(c.name for c in perf_samples.columns
                                               if isinstance(c.type, LargeBinary) and c.nullable)

accuracy_samples = Table(
    "accuracy_samples", metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True, autoincrement=False),
    Column("sample_index", BigInteger, primary_key=True, autoincrement=False),
    Column("prediction", JSONText),
    Column("reference", JSONText),
    Column("correct", Boolean),
)

# Runs imported from outside (version 2): where each came from. The run itself is a row of `runs`
# (provenance 'imported'); (round, source_path) identifies the published result, so importing
# the same tree twice finds it and adds nothing.
imported_runs = Table(
    "imported_runs", metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True, autoincrement=False),
    Column("source", String(32), nullable=False),
    Column("round", String(32), nullable=False),
    Column("division", String(32), nullable=False),
    Column("submitter", String(255), nullable=False),
    Column("availability", String(64), nullable=False),
    Column("system_name", Text, nullable=False),
    Column("accelerator", Text, nullable=False),
    Column("accelerators_per_node", Integer),
    Column("model", String(255), nullable=False),
    Column("scenario", String(64), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("compliance", JSONText, nullable=False),
    Column("power", JSONText),
    Column("accuracy_text", Text),
    Column("imported_at", UTCDateTime, nullable=False),
    UniqueConstraint("round", "source_path", name="uq_imported_runs_round_source_path"),
)
Index("ix_imported_runs_source_model", imported_runs.c.source, imported_runs.c.model, imported_runs.c.scenario)

# Sweeps (version 3). A sweep is a matrix of runs from a sweep file; each cell is keyed by the hash
# of its resolved request. A cell's run_id is the run that counts (its latest attempt); every run
# the sweep started, failed or aborted attempts included, is in sweep_runs with its cell.
sweeps = Table(
    "sweeps", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("file_path", Text, nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("spec", JSONText, nullable=False),
    Column("status", String(16), nullable=False),
    Column("cell_count", Integer, nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
)
Index("ix_sweeps_name", sweeps.c.name)

sweep_cells = Table(
    "sweep_cells", metadata,
    Column("sweep_id", Integer, ForeignKey("sweeps.id"), primary_key=True, autoincrement=False),
    Column("cell_key", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("request", JSONText, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("attempts", Integer, nullable=False),
    Column("run_id", Integer, ForeignKey("runs.id")),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
)

sweep_runs = Table(
    "sweep_runs", metadata,
    Column("run_id", Integer, ForeignKey("runs.id"), primary_key=True, autoincrement=False),
    Column("sweep_id", Integer, ForeignKey("sweeps.id"), nullable=False),
    Column("cell_key", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
)
Index("ix_sweep_runs_cell", sweep_runs.c.sweep_id, sweep_runs.c.cell_key)
SWEEP_TABLES = (sweeps, sweep_cells, sweep_runs)

# Peak-QPS searches (version 4): one row per `infersight peak` (runner.services.search_peak). Each
# probe is an ordinary run whose search_id points here; `result` holds the probes' target QPS,
# validity and P(VALID) per QPS tried, and the peak found.
peak_searches = Table(
    "peak_searches", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_name", String(255), nullable=False),
    Column("backend_name", String(255), nullable=False),
    Column("scenario", String(64), nullable=False),
    Column("request", JSONText, nullable=False),
    Column("status", String(16), nullable=False),
    Column("result", JSONText),
    Column("hostname", String(255), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
)

# Accounts of the team server (version 7). A token is `ist_<token_id>_<secret>`: token_id finds the row,
# secret_hash is the argon2 hash of the secret (the secret itself is never stored). scopes: the actions
# the token may use (JSON list; NULL: every action its user's role allows).
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_id", String(32), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("label", Text),
    Column("secret_hash", Text, nullable=False),
    Column("scopes", JSONText),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)
ACCOUNT_TABLES = (users, api_tokens)

# Jobs (version 8): a run, sweep or peak search submitted to the job service (runner/jobs) and run by a worker
# process on `hostname`, one measuring job per machine at a time. `run_ids` lists every run it made so far;
# `result` names what it produced (run_id, search_id or sweep_id); `pid` is the worker that claimed it.
jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("request", JSONText, nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Float, nullable=False),
    Column("phase", Text),
    Column("run_ids", JSONText, nullable=False),
    Column("result", JSONText),
    Column("error", Text),
    Column("submitted_by", String(255), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer),
    Column("cancel_requested", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
)
Index("ix_jobs_host_status", jobs.c.hostname, jobs.c.status)

# Run bundles received (version 9), by upload (`infersight submit`, POST /api/bundles) or `import bundle`:
# stored in the same transaction as the bundle's runs, so a bundle is stored whole or not at all, once.
# `runs` lists the bundle's run uuids, `stored` those this bundle added (the others were present).
submissions = Table(
    "submissions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("bundle_sha256", String(64), nullable=False, unique=True),
    Column("hostname", String(255), nullable=False),
    Column("submitted_by", String(255)),
    Column("size_bytes", BigInteger, nullable=False),
    Column("runs", JSONText, nullable=False),
    Column("stored", JSONText, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)

# Where `infersight sync` stands with each server (version 9): the server's cursor after the last page
# pulled, and the id of the last local run pushed.
sync_state = Table(
    "sync_state", metadata,
    Column("server", String(1000), primary_key=True),
    Column("pull_cursor", String(255)),
    Column("pushed_run_id", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
