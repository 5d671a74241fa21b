"""The import report, and the exception that skips one result with a reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ImportReport", "Skipped", "SkipResult"]


@dataclass(frozen=True)
class Skipped:
    """A file (or folder) not imported, or only partly used, and why."""

    file: str
    reason: str


class SkipResult(Exception):
    """Raised while reading one result: the result is not imported, for this reason."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file, self.reason = str(file), reason


@dataclass
class ImportReport:
    """What one import did: counts, the runs it stored, and every skipped item with its reason.

    `skipped` lists results that were not imported and files (or lines) that were left out of a
    result that was; `results_skipped` counts only the former.
    """

    root: str
    round: str
    results_found: int = 0
    imported: int = 0
    already_present: int = 0
    results_skipped: int = 0
    run_ids: list[int] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, file: str | Path, reason: str, result: bool = False) -> None:
        """Record a skipped item (its path relative to the root); `result` when a whole result is left out."""
        path = Path(file)
        if path.is_absolute() and path.is_relative_to(self.root):
            path = path.relative_to(self.root)
        self.skipped.append(Skipped(path.as_posix(), reason))
        self.results_skipped += int(result)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        data = asdict(self)
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data
