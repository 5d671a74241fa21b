"""Run bundles: a run's four cards and two logs in one folder or archive, the unit of export, import,
submission and sync between machines (`infersight export bundle`, `import bundle`, `submit`, `sync`).
Format: runner/bundles/_format.py."""

from runner.bundles._format import BUNDLE_VERSION
from runner.bundles.export import ExportResult, bundle_zip, export_bundle
from runner.bundles.importer import BundleImport, bundled_from, import_bundle, store_bundle
from runner.bundles.ingest import PAGE_LIMIT, SyncPage, receive_bundle, send_bundle, sync_page
from runner.bundles.read import Limits, read_bundle
from runner.bundles.sync import Remote, StoreRemote, SyncResult, submit_runs, sync

__all__ = ["export_bundle", "import_bundle", "read_bundle", "bundled_from", "ExportResult", "BundleImport",
           "BUNDLE_VERSION", "bundle_zip", "store_bundle", "receive_bundle", "send_bundle", "sync_page", "SyncPage",
           "PAGE_LIMIT", "Limits", "Remote", "StoreRemote", "SyncResult", "sync", "submit_runs"]
