"""Importers of results measured elsewhere (MLPerf Inference submissions) into the store."""

from runner.importers.mlperf import ImportReport, import_tree

__all__ = ["ImportReport", "import_tree"]
