"""The command line's backend shortcuts (--threads, --provider, --batch-size), as each backend declares them.

A backend's settings model says which shortcut sets which of its settings (`cli_aliases`): --threads is
onnxruntime's intra_op_threads and OpenVINO's inference_num_threads; --provider exists only where there
are execution providers. A shortcut a backend lacks is refused with that backend's settings listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner import registry
from runner.errors import SettingsError

__all__ = ["backend_options"]


def backend_options(backend: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of `backend` that the shortcuts `options` ({"threads": 2, "provider": ("cpu",)}) stand
    for; shortcuts left unset (None or empty) are ignored. SettingsError names a shortcut the backend lacks."""
    settings = registry.get("backend", backend).Settings
    out: dict[str, Any] = {}
    for option, value in options.items():
        if value is None or (isinstance(value, (tuple, list)) and not value):
            continue
        if option not in settings.cli_aliases:
            shortcuts = ", ".join(f"--{a.replace('_', '-')} ({f})" for a, f in sorted(settings.cli_aliases.items()))
            raise SettingsError(f"--{option.replace('_', '-')} does not apply to backend {backend!r}: its shortcuts "
                                f"are {shortcuts or 'none'}; its settings are {', '.join(settings.model_fields)} "
                                f"(set any with --backend-set KEY=VALUE)")
        out[settings.cli_aliases[option]] = list(value) if isinstance(value, tuple) else value
    return out
