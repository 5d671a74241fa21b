"""The recommendation question, as the Recommend page and Reports -> Decision ask it: the same constraints
as the CLI (`infersight recommend`), offered only where the scenario gives them a meaning.

Task and scenario sit outside the form, so the scenario list follows the task at once (a form only
sends its fields on submit); the scenario's widget key carries the task, so a choice made for another
task never lingers. The bounds shown are the scenario's (engine.constraints.SCENARIO_FIGURES): p99 for
single-stream, multi-stream and server, TTFT and TPOT for server and interactive, throughput
everywhere, tokens/s for generative tasks, plus power and budget. A target load is asked only where
the scenario has a capacity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from engine import EXAMPLE_CATALOG
from engine.constraints import CAPACITY_SCENARIOS, SCENARIO_FIGURES
from engine.services import CATALOG_RULE

__all__ = ["ask", "objectives_for"]

# CLI option keyword -> (label, default by scenario: {scenario: value}, else 0 = none), in form order
_FIELDS = {
    "max_p99_ms": ("max p99 latency (ms)", {"server": 15.0}),
    "max_ttft_ms": ("max p99 time to first token (ms)", {"interactive": 2000.0}),
    "max_tpot_ms": ("max p99 time per output token (ms)", {"interactive": 100.0}),
    "min_throughput_per_s": ("min throughput per unit (inferences/s)", {}),
    "min_tokens_per_s": ("min tokens/s per unit", {}),
    "min_accuracy_ratio": ("min accuracy / reference (0.99 = 99%)", {"*": 0.99}),
    "max_power_w": ("max power (W)", {}),
    "max_cost_per_hour_usd": ("budget: max cost per hour (USD/h)", {}),
}
_NEEDS = {"max_p99_ms": "p99", "max_ttft_ms": "ttft", "max_tpot_ms": "tpot", "min_tokens_per_s": "tokens"}


def objectives_for(scenario: str, generative: bool) -> dict[str, str]:
    """The objectives that mean something under `scenario`, with their labels."""
    out = {"cost": "least cost per million " + ("tokens" if generative else "inferences"),
           "throughput_per_usd": "most throughput per dollar", "throughput_per_watt": "most throughput per watt",
           "throughput": "most throughput"}
    if "p99" in SCENARIO_FIGURES.get(scenario, ()):
        out["latency"] = "lowest p99 latency"
    return out


def ask(held: pd.DataFrame, key: str, generative: Callable[[str, str], bool], default_task: str = "resnet50",
        default_scenario: str = "server", extra: Callable[[], Any] | None = None,
        submit: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Draw the question's widgets (keys prefixed `key`) and return their values as the fields of an
    engine.services.RecommendRequest (the caller parses it, so a bad value is an error on its page, with
    `what_if` on: the app always shows how the answer moves). `held` is engine.candidates.available's
    frame, `generative(task, scenario)` says whether its candidates generate tokens. `extra()` draws more
    form fields (the caller reads its own widgets); `submit()` draws the form's button (default: 'Recommend')."""
    tasks = sorted(held["task"].unique())
    c = st.columns(4)
    task = c[0].selectbox("Task", tasks, index=tasks.index(default_task) if default_task in tasks else 0,
                          key=f"{key}_task")
    scenarios = sorted(held.loc[held["task"] == task, "scenario"].unique())
    scenario = c[1].selectbox("Scenario", scenarios, key=f"{key}_scenario_{task}",
                              index=scenarios.index(default_scenario) if default_scenario in scenarios else 0)
    generative = bool(generative(task, scenario))
    with st.form(f"{key}_form"):
        objectives = objectives_for(scenario, generative)
        c = st.columns(4)
        objective = c[0].selectbox("Objective", list(objectives), format_func=objectives.get,
                                   key=f"{key}_objective_{scenario}")
        target = None
        if scenario in CAPACITY_SCENARIOS:
            target = c[1].number_input("Target load (inferences/s, 0: none)", min_value=0.0, value=0.0,
                                       key=f"{key}_target") or None
        catalog = c[2].text_input("Price catalogue (YAML/CSV)", str(EXAMPLE_CATALOG), key=f"{key}_catalog",
                                  help=f"A price and power catalogue file; {CATALOG_RULE}.")
        uncertain = c[3].checkbox("Rank uncertain verdicts too", key=f"{key}_uncertain")
        bounds = _bounds(key, task, scenario, generative)
        if extra is not None:
            extra()
        (submit or (lambda: st.form_submit_button("Recommend")))()
    return {"task": task, "scenario": scenario, "objective": objective, "target_qps": target, "bounds": bounds,
            "catalog": catalog.strip() or None, "include_uncertain": uncertain, "what_if": True}


def _bounds(key: str, task: str, scenario: str, generative: bool) -> dict[str, float]:
    """The scenario's bound fields, four per row; 0 means no bound (left out)."""
    applies = SCENARIO_FIGURES.get(scenario, ())
    shown = [name for name in _FIELDS if _NEEDS.get(name, "throughput") in applies
             and (name != "min_tokens_per_s" or generative)]
    out: dict[str, float] = {}
    for row in range(0, len(shown), 4):
        columns = st.columns(4)
        for column, name in zip(columns, shown[row:row + 4]):
            label, defaults = _FIELDS[name]
            default = defaults.get(scenario, defaults.get("*", 0.0))
            kwargs = {"max_value": 1.0, "step": 0.001, "format": "%.3f"} if name == "min_accuracy_ratio" else {}
            value = column.number_input(f"{label}, 0: none", min_value=0.0, value=default,
                                        key=f"{key}_{name}_{task}_{scenario}", **kwargs)
            if value:
                out[name] = value
    return out
