"""The results store: cards, runs, per-query samples and accuracy records in SQLite or PostgreSQL."""

from runner.store._bundled import BundledRunRows, Received, SyncCursor
from runner.store._engine import DEFAULT_URL, resolve_url
from runner.store.migrations import LATEST_VERSION, MIGRATIONS
from runner.store.schema import PERF_COLUMNS, metadata
from runner.store.records import RunRecord
from runner.store.searches import SEARCH_STATUSES, SearchLog
from runner.store.store import CHUNK_ROWS, PROVENANCES, RUN_STATUSES, VALIDITIES, Store

__all__ = ["Store", "RunRecord", "resolve_url", "DEFAULT_URL", "metadata", "MIGRATIONS", "LATEST_VERSION",
           "PERF_COLUMNS", "RUN_STATUSES", "VALIDITIES", "PROVENANCES", "CHUNK_ROWS", "SearchLog", "SEARCH_STATUSES",
           "BundledRunRows", "Received", "SyncCursor"]
