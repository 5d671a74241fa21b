"""Find the results of an MLPerf Inference submission tree, and where each one's files are.

Layout (one round): <root>/<division>/<Submitter>/ with
  systems/<system>.json                                  the system description
  results/<system>/<model>/<scenario>/performance/run_1/  mlperf_log_summary.txt, mlperf_log_detail.txt,
                                                          spl.txt (power runs)
  results/<system>/<model>/<scenario>/accuracy/accuracy.txt
  measurements/<system>/<model>/<scenario>/*.json          the model's data types and weights
  compliance/<system>/<model>/<scenario>/TEST*/verify_*.txt
PATH may be the round folder (holding closed/, open/, network/), one division, or one
submitter. `source_path` is a result folder relative to the round folder, as MLCommons'
results table writes it in `Location` ("closed/NVIDIA/results/<system>/<model>/<scenario>").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ResultFolder", "find_results", "round_root", "guess_round", "DIVISIONS"]

DIVISIONS = ("closed", "open", "network")
_ROUND = re.compile(r"^v?\d+\.\d+$")


@dataclass(frozen=True)
class ResultFolder:
    """One result: a scenario folder of one model on one system, with its related paths."""

    root: Path
    division: str
    submitter: str
    system: str
    model: str
    scenario_folder: str
    path: Path

    @property
    def submitter_dir(self) -> Path:
        return self.root / self.division / self.submitter

    @property
    def source_path(self) -> str:
        return self.path.relative_to(self.root).as_posix()

    @property
    def run_dir(self) -> Path:
        """performance/run_1, or the first run_* folder if a tree numbers them otherwise."""
        perf = self.path / "performance"
        runs = sorted(p for p in perf.glob("run_*") if p.is_dir()) if perf.is_dir() else []
        return perf / "run_1" if (perf / "run_1").is_dir() or not runs else runs[0]

    @property
    def summary(self) -> Path:
        return self.run_dir / "mlperf_log_summary.txt"

    @property
    def detail(self) -> Path:
        return self.run_dir / "mlperf_log_detail.txt"

    @property
    def spl(self) -> Path:
        return self.run_dir / "spl.txt"

    @property
    def accuracy(self) -> Path:
        return self.path / "accuracy" / "accuracy.txt"

    @property
    def system_json(self) -> Path:
        return self.submitter_dir / "systems" / f"{self.system}.json"

    @property
    def measurements(self) -> Path:
        return self.submitter_dir / "measurements" / self.system / self.model / self.scenario_folder

    @property
    def compliance(self) -> Path:
        return self.submitter_dir / "compliance" / self.system / self.model / self.scenario_folder


def round_root(path: Path) -> tuple[Path, list[Path]]:
    """(the round folder, the submitter folders to walk) for a round, division or submitter PATH."""
    path = path.resolve()
    if path.name in DIVISIONS:
        return path.parent, _subdirs(path)
    if (path / "results").is_dir() or (path / "systems").is_dir():
        return path.parent.parent, [path]
    return path, [s for d in DIVISIONS if (path / d).is_dir() for s in _subdirs(path / d)]


def guess_round(root: Path) -> str | None:
    """The round named by the round folder or one of its parents ('v4.1'), if any."""
    for part in (root, *root.parents):
        if _ROUND.match(part.name):
            return part.name if part.name.startswith("v") else f"v{part.name}"
    return None


def find_results(root: Path, submitters: list[Path]) -> Iterator[ResultFolder]:
    """Every results/<system>/<model>/<scenario> folder under the submitter folders, sorted."""
    for submitter in submitters:
        results = submitter / "results"
        for system in _subdirs(results):
            for model in _subdirs(system):
                for scenario in _subdirs(model):
                    yield ResultFolder(root, submitter.parent.name, submitter.name, system.name, model.name,
                                       scenario.name, scenario)


def _subdirs(path: Path) -> list[Path]:
    """Sorted sub-folders (none if `path` is not a readable folder); hidden ones left out."""
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
