"""Zip archives changed in place for the bad-bundle tests (test_sync, test_api_bundles)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable


def spoil(data: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    """The zip `data` with its files changed by `change(files)` (a dict name -> bytes, edited in place)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    change(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return out.getvalue()
