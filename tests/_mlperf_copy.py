"""Copy one real MLPerf result (with its system JSON, measurements and compliance) into a test folder."""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["copy_result"]


def copy_result(source: Path, location: str, root: Path) -> Path:
    """Copy result `location` (closed/<Submitter>/results/<system>/<model>/<scenario>) of the round folder
    `source` (e.g. ../shared/data/mlperf/v5.1) under root/<round>; return the copied result folder."""
    parts, out = Path(location).parts, root / source.name
    rest = Path(*parts[3:])
    for kind in ("results", "measurements", "compliance"):
        if (source / parts[0] / parts[1] / kind / rest).is_dir():
            shutil.copytree(source / parts[0] / parts[1] / kind / rest, out / parts[0] / parts[1] / kind / rest)
    systems = out / parts[0] / parts[1] / "systems"
    systems.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / parts[0] / parts[1] / "systems" / f"{parts[3]}.json", systems)
    return out / location
