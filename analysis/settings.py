"""The settings that tell runs apart, as short text: what `runs`, comparisons, reports and the app show
beside a configuration's name so that two configurations never look alike.

`settings_of(run)` is a run's settings as flat name=value pairs: its backend's effective settings
(threads, performance hint, providers, batch size, ...) and, for a Server run measured here, its
target QPS. `distinguishing(runs)` gives, for each run, only the pairs whose value differs among
runs of the same task, backend and scenario in the list, plus the thread and hint settings
(KEY_SETTINGS), which a reader always wants; '-' when there are none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from runner.store import RunRecord

__all__ = ["settings_of", "distinguishing", "KEY_SETTINGS"]

# setting names (substrings) always shown: they change a configuration's speed most
KEY_SETTINGS = ("threads", "hint", "streams", "num_requests")
_LONGEST = 40  # characters of one value shown (an imported result's framework text can run to hundreds)


def settings_of(run: RunRecord) -> dict[str, str]:
    """A run's settings as name -> short text (module doc)."""
    settings = run.settings or {}
    out = {}
    for key, value in sorted((settings.get("backend") or {}).items()):
        if key == "providers" and isinstance(value, list):
            value = "+".join(str(p).replace("ExecutionProvider", "") for p in value)
        text = str(value)
        out[key] = text if len(text) <= _LONGEST else text[:_LONGEST - 3] + "..."
    qps = (settings.get("scenario") or {}).get("target_qps")
    if run.scenario == "server" and qps and run.provenance != "imported":
        out["target_qps"] = f"{qps:g}"
    return out


def distinguishing(runs: Sequence[RunRecord]) -> list[str]:
    """For each run, 'name=value, ...' of its settings that differ among runs of its task, backend and
    scenario in `runs`, plus the KEY_SETTINGS ones; '-' when there are none."""
    pairs = [settings_of(r) for r in runs]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, run in enumerate(runs):
        groups[(run.task_name, run.backend_name, run.scenario)].append(i)
    varying: dict[int, set[str]] = {}
    for members in groups.values():
        names = {k for i in members for k in pairs[i]}
        differ = {k for k in names if len({pairs[i].get(k) for i in members}) > 1}
        for i in members:
            varying[i] = differ
    out = []
    for i, own in enumerate(pairs):
        shown = [f"{k}={v}" for k, v in own.items() if k in varying[i] or any(s in k for s in KEY_SETTINGS)]
        out.append(", ".join(shown) or "-")
    return out
