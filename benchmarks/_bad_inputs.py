"""Bad inputs for every file kind a user gives infersight, drawn by Hypothesis, and how each was received.

Every case is invalid by construction: a valid file of its kind (a system extra, a sweep, a price
catalogue, a task card, a model card, a `--set` value) with one fault that no reader may accept,
at a random place: a byte that is not UTF-8, nesting past the depth limit, an alias bomb, a key
given twice, a non-finite number, an integer beyond 64 bits, an unknown field, random bytes, an
empty file. Each case goes through the real entry point (the CLI in-process, or the loader the
task plugins use) and is classed: refused as it should be (exit 2, a message naming the file or
option and the line), a traceback (any other exception), a silent acceptance (exit 0), a message
that does not say where, or a partial write (the store file changed).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
BASES: dict[str, tuple[str, Any]] = {
    "system_extra": ("yaml", {"power_w": 300, "price_per_hour_usd": 2.5, "accelerator_model_name": "none"}),
    "sweep": ("yaml", {"name": "bad", "tasks": ["digits"], "backends": [{"name": "null"}],
                       "scenarios": [{"name": "offline", "settings": {"min_duration_ms": 1000}}], "quick": True}),
    "catalogue": ("yaml", None),     # engine/catalog_example.yaml
    "task_card": ("yaml", None),     # tasks/digits/task.yaml
    "model_card": ("json", None),    # tasks/digits/models/digits-fp32.onnx.card.json
    "set_value": ("yaml", {"min_duration_ms": 1000}),
}
FAULTS = ("not_utf8", "too_deep", "alias_bomb", "duplicate_key", "non_finite", "huge_int", "unknown_field",
          "random_bytes", "empty")
BOMB = "lol: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"lol{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))


@dataclass
class Outcome:
    """How one bad input was received."""

    kind: str
    fault: str
    verdict: str  # refused | traceback | accepted | no_place | partial_write
    message: str


def base_data(kind: str) -> Any:
    """The valid content a case starts from."""
    fmt, data = BASES[kind]
    if data is not None:
        return data
    path = {"catalogue": REPO / "engine/catalog_example.yaml", "task_card": REPO / "tasks/digits/task.yaml",
            "model_card": REPO / "tasks/digits/models/digits-fp32.onnx.card.json"}[kind]
    return json.loads(path.read_text()) if fmt == "json" else yaml.safe_load(path.read_text())


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every mapping key path in data (where a fault may go)."""
    out = []
    if isinstance(data, dict):
        for key, value in data.items():
            out.append(prefix + (key,))
            out.extend(_paths(value, prefix + (key,)))
    elif isinstance(data, list):
        for index, value in enumerate(data[:3]):
            out.extend(_paths(value, prefix + (index,)))
    return out


def _set(data: Any, path: tuple, value: Any) -> Any:
    data = json.loads(json.dumps(data))
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def _dump(fmt: str, data: Any) -> str:
    return json.dumps(data, indent=1) if fmt == "json" else yaml.safe_dump(data, sort_keys=False)


def make_case(kind: str, fault: str, rng: random.Random) -> bytes:
    """The bytes of a bad file of `kind` with `fault` at a place chosen by rng."""
    fmt, data = BASES[kind][0], base_data(kind)
    path = rng.choice(_paths(data))
    text = _dump(fmt, data)
    if fault == "not_utf8":
        raw = text.encode()
        at = rng.randrange(len(raw) + 1)
        return raw[:at] + rng.choice([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"]) + raw[at:]
    if fault == "too_deep":
        depth = rng.randint(65, 400)
        return _dump(fmt, _set(data, path, _nest(depth, rng.random() < 0.5))).encode()
    if fault == "alias_bomb" and kind == "set_value":
        return ("{min_duration_ms: [&a [x, x, x, x, x, x, x, x, x], " + ", ".join(
            f"&{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi")) + "]}").encode()
    if fault == "alias_bomb":
        return (BOMB + text).encode() if fmt == "yaml" else ("[" * rng.randint(70, 3000)).encode()
    if fault == "duplicate_key":
        key = rng.choice(list(data))
        if fmt == "json":
            return text.replace("{", "{" + json.dumps(key) + ": " + json.dumps(data[key]) + ",", 1).encode()
        return (text + yaml.safe_dump({key: data[key]}, sort_keys=False)).encode()
    if fault == "non_finite":
        return _dump(fmt, _set(data, path, rng.choice([float("inf"), float("-inf"), float("nan")]))).encode()
    if fault == "huge_int":
        value = rng.choice([2**64 + rng.randrange(10**6), -(2**63) - 1 - rng.randrange(10**6), 10**rng.randint(20, 60)])
        return _dump(fmt, _set(data, path, value)).encode()
    if fault == "unknown_field":
        return _dump(fmt, {**data, f"zz_{rng.randrange(10**6)}": rng.choice([1, "x", [1], {"a": 1}])}).encode()
    if fault == "random_bytes":
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))) + b"\xff"
    return b""


def _nest(depth: int, as_list: bool) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


class Harness:
    """Runs cases against one pre-made store under `folder`; the store's bytes must never change."""

    def __init__(self, folder: Path) -> None:
        from runner.store import Store

        self.folder, self.db = folder, folder / "store.db"
        Store(str(self.db)).close()
        self.digest = self._digest()

    def _digest(self) -> str:
        return hashlib.sha256(self.db.read_bytes()).hexdigest()

    def check(self, kind: str, fault: str, body: bytes) -> Outcome:
        """Feed one bad input through its real entry point and class the result."""
        if kind == "set_value":
            text = body.decode("utf-8", errors="surrogateescape")
            key = "min_duration_ms"
            args = ["run", "digits", "--backend", "null", "--quick", "--set", f"{key}={_inline(text)}"]
            place = re.compile(r"--set|min_duration_ms|scenario offline")
            code, message = self._cli(args)
        else:
            suffix = ".json" if BASES[kind][0] == "json" else ".yaml"
            path = self.folder / f"{kind}-case{suffix}"
            path.write_bytes(body)
            place = re.compile(re.escape(path.name) + r"(:\d+)?")
            code, message = self._entry(kind, path)
        verdict = ("traceback" if code is None else "accepted" if code == 0 else
                   "refused" if code == 2 and place.search(message) else "no_place")
        if verdict == "refused" and self._digest() != self.digest:
            verdict = "partial_write"
        return Outcome(kind, fault, verdict, message.strip().splitlines()[0][:200] if message.strip() else "")

    def _entry(self, kind: str, path: Path) -> tuple[int | None, str]:
        if kind == "system_extra":
            return self._cli(["run", "digits", "--backend", "null", "--quick", "--system-extra", str(path)])
        if kind == "sweep":
            return self._cli(["sweep", str(path), "--plan"])
        if kind == "catalogue":
            return self._cli(["recommend", "--task", "digits", "--scenario", "offline", "--catalog", str(path)])
        return self._function(kind, path)

    def _cli(self, args: list[str]) -> tuple[int | None, str]:
        from infersight.cli import main

        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                main([*args, "--db", str(self.db)])
            return 0, buffer.getvalue()
        except SystemExit as exc:
            return int(exc.code or 0), buffer.getvalue()
        except BaseException as exc:  # noqa: BLE001 - what a user would see as a traceback
            return None, f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _function(kind: str, path: Path) -> tuple[int | None, str]:
        from runner.errors import InfersightError
        from runner.task import load_model_card, load_task_card

        try:
            if kind == "task_card":
                load_task_card(path)
            else:
                load_model_card(path, "digits", verify=False)
            return 0, ""
        except InfersightError as exc:
            return 2, str(exc)
        except BaseException as exc:  # noqa: BLE001
            return None, f"{type(exc).__name__}: {exc}"


def _inline(text: str) -> str:
    """A --set value on one line (flow style), as a user would type it."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return text.replace("\n", " ")
    if not isinstance(data, dict) or "min_duration_ms" not in data or isinstance(data["min_duration_ms"], int):
        return text.replace("\n", " ")
    if text.startswith("{min_duration_ms: [&a"):
        return text[len("{min_duration_ms: "):-1]
    return yaml.safe_dump(data["min_duration_ms"], default_flow_style=True).strip().removesuffix("...").strip()


def run_cases(folder: Path, examples: int, seed: int = 0) -> list[Outcome]:
    """Draw `examples` cases with Hypothesis (kind x fault x a seed for the place) and class each."""
    harness, outcomes = Harness(folder), []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(list(BASES)), st.sampled_from(FAULTS), st.integers(0, 2**32))
    def case(kind: str, fault: str, place_seed: int) -> None:
        if kind == "set_value" and fault in ("not_utf8", "random_bytes", "empty", "unknown_field", "duplicate_key"):
            fault = "non_finite"  # a --set value is one line of text: only value faults apply
        outcomes.append(harness.check(kind, fault, make_case(kind, fault, random.Random(place_seed + seed))))

    case()
    return outcomes


def tally(outcomes: list[Outcome]) -> dict[str, int]:
    """Counts of each verdict, plus the number of cases."""
    counts = Counter(o.verdict for o in outcomes)
    return {"cases": len(outcomes), **{v: counts.get(v, 0) for v in
                                       ("refused", "traceback", "accepted", "no_place", "partial_write")}}
