"""Pinned reference models: a task card's `models` section fixes the bytes of each variant's file.

Training in numpy goes through BLAS, whose kernels differ by CPU, so a rebuild is byte-for-byte
reproducible on one machine but not across machines. The reference files are therefore committed
and pinned by sha256 in the task card (as MLPerf pins its reference checksums): a run refuses a
file with other bytes, `infersight build TASK` never replaces a pinned file with different bytes,
and `infersight build TASK --check` rebuilds into a temporary folder and says, per variant,
whether this machine reproduces the pinned file.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from runner.errors import ModelFileError
from runner.task import Task, file_sha256, relative

__all__ = ["PinStatus", "BuildOutcome", "pinned_status", "check_build", "build_task"]


@dataclass(frozen=True)
class PinStatus:
    """One variant of a pinned task: its pin, the file here, and (after a rebuild) what this machine built."""

    variant: str
    file: str
    pinned_sha256: str
    present_sha256: str | None
    rebuilt_sha256: str | None = None
    metric: str | None = None
    rebuilt_quality: float | None = None
    pinned_quality: float | None = None

    @property
    def present_ok(self) -> bool:
        """The file here has the pinned bytes."""
        return self.present_sha256 == self.pinned_sha256

    @property
    def reproduced(self) -> bool | None:
        """This machine's rebuild gave the pinned bytes (None: not rebuilt)."""
        return None if self.rebuilt_sha256 is None else self.rebuilt_sha256 == self.pinned_sha256

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "present_ok": self.present_ok, "reproduced": self.reproduced}


@dataclass(frozen=True)
class BuildOutcome:
    """What `infersight build TASK` did: `action` is built (no pins), verified (pinned files already here),
    restored (rebuilt files equal to their pins put in place) or refused (a rebuild differs from its pin)."""

    task: str
    action: str
    statuses: tuple[PinStatus, ...]
    cards: tuple[Path, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "action": self.action, "variants": [s.to_dict() for s in self.statuses],
                "cards": [str(p) for p in self.cards]}


def pinned_status(task: Task) -> list[PinStatus]:
    """Each pinned variant with the sha256 of the file here (None when missing); the pinned quality from its card."""
    out = []
    for variant, pin in task.card.models.items():
        path = task.models_dir / pin.file
        present = file_sha256(path) if path.exists() else None
        metric, quality = _quality(path.with_name(path.name + ".card.json"))
        out.append(PinStatus(variant, pin.file, pin.sha256, present, metric=metric, pinned_quality=quality))
    return out


def check_build(task: Task, progress: bool = False) -> list[PinStatus]:
    """Rebuild every variant into a temporary folder and compare each file with its pin; nothing here changes.
    A task that pins nothing has nothing to check (an empty list, and no rebuild)."""
    if not task.card.models:
        return []
    if not task.builds_pinned_files:  # given files are their own reference: check the bytes that are here
        return [replace(s, rebuilt_sha256=s.present_sha256) for s in pinned_status(task)]
    with tempfile.TemporaryDirectory(prefix=f"infersight-check-{task.name}-") as tmp:
        return _rebuilt(task, Path(tmp), progress)


def build_task(task: Task, progress: bool = True) -> BuildOutcome:
    """Build a task's models without ever replacing a pinned file with different bytes.

    No pins: the task's build writes its models. All pinned files here with their pinned bytes: nothing
    is rebuilt. Otherwise the task is rebuilt into a temporary folder; a rebuilt file equal to its pin is
    put in place with its card, and a rebuilt file that differs is refused (ModelFileError, nothing
    installed): the pinned files are restored from the repository, not rebuilt on this machine.
    """
    if not task.card.models or not task.builds_pinned_files:
        return BuildOutcome(task.name, "built", (), tuple(task.build(progress=progress)))
    statuses = pinned_status(task)
    if all(s.present_ok for s in statuses) and all(task.model_card_path(v).exists() for v in task.variants):
        return BuildOutcome(task.name, "verified", tuple(statuses))
    with tempfile.TemporaryDirectory(prefix=f"infersight-build-{task.name}-") as tmp:
        rebuilt = _rebuilt(task, Path(tmp), progress)
        differs = [s for s in rebuilt if not s.reproduced]
        if differs:
            raise ModelFileError(_refusal(task, differs))
        task.models_dir.mkdir(parents=True, exist_ok=True)
        _install(task, Path(tmp), rebuilt)
    cards = tuple(p for p in (task.models_dir / (s.file + ".card.json") for s in rebuilt) if p.exists())
    return BuildOutcome(task.name, "restored", tuple(rebuilt), cards)


def _install(task: Task, built: Path, rebuilt: list[PinStatus]) -> None:
    """Put the rebuilt files in place: a pinned file (equal to its pin) where the one here is missing or
    changed, its card unless the one here already names those bytes, and every unpinned file as built (an
    int8 variant quantised on this machine, its card). A pinned part of a pipeline (a second model file of
    a variant) has no card of its own. Models go first, then cards: an interrupted copy never leaves a card
    without its model."""
    pinned = {s.file: s for s in rebuilt}
    names = [s.file for s in rebuilt if not s.present_ok]
    names += [s.file + ".card.json" for s in rebuilt if (built / (s.file + ".card.json")).exists()
              and not _describes(task.models_dir / s.file, s.pinned_sha256)]
    names += [p.name for p in built.iterdir()
              if p.is_file() and p.name.removesuffix(".card.json") not in pinned]
    names.sort(key=lambda name: name.endswith(".card.json"))
    for name in names:
        shutil.copyfile(built / name, task.models_dir / f".{name}.tmp")
    for name in names:
        (task.models_dir / f".{name}.tmp").replace(task.models_dir / name)


def _rebuilt(task: Task, out_dir: Path, progress: bool) -> list[PinStatus]:
    task.build(progress=progress, out_dir=out_dir)
    out = []
    for s in pinned_status(task):
        path = out_dir / s.file
        metric, quality = _quality(path.with_name(path.name + ".card.json"))
        out.append(PinStatus(s.variant, s.file, s.pinned_sha256, s.present_sha256,
                             file_sha256(path) if path.exists() else None, metric or s.metric, quality,
                             s.pinned_quality))
    return out


def _describes(model_path: Path, sha256: str) -> bool:
    """The model card beside `model_path` is there and names these bytes (it is kept: the committed card,
    not this machine's rebuild of it with its own tool versions, so the model's card hash stays the same)."""
    try:
        card = json.loads(model_path.with_name(model_path.name + ".card.json").read_text(encoding="utf-8"))
        return card.get("sha256") == sha256
    except (OSError, ValueError, AttributeError):
        return False


def _quality(card_path: Path) -> tuple[str | None, float | None]:
    """(metric, value) of a model card's reference quality; (None, None) when unreadable."""
    try:
        ref = json.loads(card_path.read_text(encoding="utf-8"))["reference_quality"]
        return ref["metric"], float(ref["value"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


def _refusal(task: Task, differs: list[PinStatus]) -> str:
    lines = [f"task {task.name!r}: the pinned model files are missing or changed here, and this machine's "
             f"rebuild does not reproduce them, so nothing was installed:"]
    lines += [f"  {task.models_dir / s.file}: pinned sha256 {s.pinned_sha256}, rebuilt {s.rebuilt_sha256}"
              for s in differs]
    lines.append(f"restore the pinned files with `git checkout -- {relative(task.models_dir)}`")
    return "\n".join(lines)

