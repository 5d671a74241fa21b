"""Run bundles: a run's four cards and two logs in one folder or archive, the unit of export and import
between machines (`infersight export bundle`, `infersight import bundle`). Format: runner/bundles/_format.py."""

from runner.bundles._format import BUNDLE_VERSION
from runner.bundles.export import ExportResult, export_bundle
from runner.bundles.importer import BundleImport, bundled_from, import_bundle
from runner.bundles.read import read_bundle

__all__ = ["export_bundle", "import_bundle", "read_bundle", "bundled_from", "ExportResult", "BundleImport",
           "BUNDLE_VERSION"]
