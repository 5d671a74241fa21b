"""Checks shared by the tests of the tasks' model builds (tests/test_digits_build.py, tests/test_charlm.py):
two builds with the same seed, one through build() and one through the command line, and the file
names every build writes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

VARIANTS = ("fp32", "int8")


def build_twice(tmp_path_factory: pytest.TempPathFactory, folder: str, build: Callable[..., dict],
                module: str, option: str, value: int) -> tuple[Path, Path]:
    """Build into fresh folders <folder>_a through build(..., <option>=value) and <folder>_b through the
    command line (`python -m <module> --out ... --<option> value --quiet`, in its own process, at the same
    time: the two builds take the two CPUs); check each gives every variant."""
    first, second = tmp_path_factory.mktemp(f"{folder}_a"), tmp_path_factory.mktemp(f"{folder}_b")
    command = [sys.executable, "-m", module, "--out", str(second), f"--{option}", str(value), "--quiet"]
    other = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert set(build(first, **{option: value}, progress=False)) == set(VARIANTS)
    finally:
        output, _ = other.communicate(timeout=900)
    assert other.returncode == 0, output
    return first, second


def model_files(task: str, variant: str) -> tuple[str, str]:
    """The model file and card file names of a task's variant."""
    return f"{task}-{variant}.onnx", f"{task}-{variant}.onnx.card.json"


def assert_only_models_and_cards(folder: Path, task: str) -> None:
    """The folder holds the model and the card of every variant, and nothing else."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(n for v in VARIANTS for n in model_files(task, v))


def assert_same_bytes(first: Path, second: Path, task: str) -> None:
    """Every model and card is byte for byte the same in both folders."""
    for variant in VARIANTS:
        for name in model_files(task, variant):
            assert (first / name).read_bytes() == (second / name).read_bytes(), name
