"""Running one measurement end to end: resolve plugins and settings, measure, log, validate, store.

`prepare_run` does every check that can fail on bad input before anything is written;
`execute_run` then writes the cards and a run marked 'running', streams the performance log
into the store as it is measured, runs the accuracy pass, and marks the run complete only
when the four cards and two logs are all present and consistent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field, ValidationError
from pydantic.dataclasses import dataclass as pydantic_dataclass

from runner import interrupts, registry
from runner.backends.base import Backend, distribution_version
from runner.backends.pipeline import PipelineBackend
from runner.cards import ModelCard, SystemCard, capture_system
from runner.cards._base import format_errors
from runner.cpus import affinity_kept, available_cpus, format_cpus, parse_cpus, pinned, thread_pinned, validate_cpus
from runner.errors import BackendError, CardError, InfersightError, SettingsError, StoreError
from runner.loadgen.result import ScenarioResult
from runner.requests import Parse
from runner.resources import memory_summary, start_run_window
from runner.scenarios.base import Scenario
from runner.sut import BackendSUT
from runner.task import AccuracyResult, Task
from runner.user_tasks import open_task
from runner.store import Store

END_WAIT_S = 60.0  # how long a failed run waits for disk space to record that it failed

__all__ = ["RunRequest", "PreparedRun", "Reporter", "prepare_run", "prepare_backend", "execute_run",
           "resolve_scenario_settings"]


class Reporter:
    """Receives progress of a run; the CLI draws a progress bar, the default stays silent."""

    def phase(self, text: str) -> None:
        """A new phase starts (loading, warm-up and timed run, accuracy pass, ...)."""

    def update(self, fraction: float, text: str) -> None:
        """Progress within the current phase, 0..1."""

    def warn(self, text: str) -> None:
        """Something the user should know before the figures (an issuing plan that cannot keep its tolerance)."""


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class RunRequest(Parse):
    """What the user asked for: one run, validated when made and frozen (derive another with
    `dataclasses.replace`; from plain data, `RunRequest.parse(**fields)` raises a SettingsError naming each
    bad field). Settings are raw dicts, validated against the backend's and the scenario's
    settings models by `prepare_run`; the CLI, the app and the REST API all build this one request."""

    task: str = Field(description="A task name, or the path of a task card (task.yaml).")
    backend: str = Field("onnxruntime", description="Backend plugin name (`infersight plugins`).")
    scenario: str = Field("offline", description="Scenario plugin name.")
    model_variant: str = Field("fp32", description="Model variant of the task (fp32, int8).")
    backend_settings: dict[str, Any] = Field(default_factory=dict,
                                             description="Backend settings by the backend's own field names.")
    scenario_settings: dict[str, Any] = Field(default_factory=dict, description="Scenario settings overrides.")
    quick: bool = Field(False, description="Short minimums (1 s); the run is marked non-compliant.")
    label: str | None = Field(None, description="Free text stored with the run.")
    system_extra: dict[str, Any] = Field(default_factory=dict, description="System-card fields to add.")
    loadgen: str = Field("infersight", description="Load generator: infersight, or mlperf (MLCommons LoadGen).")
    cpus: str | list[int] | None = Field(None, description='Pin the run to these CPUs: "0", "0-1", "0,2" '
                                                           '(None: all).')


@dataclass
class PreparedRun:
    """A request resolved to plugin instances and validated, effective settings."""

    request: RunRequest
    task: Task
    model: ModelCard
    model_path: Any
    backend: Backend
    scenario: Scenario
    compliant: bool
    system: SystemCard
    cpus: list[int] | None = None
    plan: Any = None  # the scenario's issuing plan (runner.loadgen.isolation.IssuePlan), if it issues on a schedule


def prepare_run(req: RunRequest) -> PreparedRun:
    """Resolve and validate everything; raises InfersightError before anything is written."""
    task: Task = open_task(req.task)
    scenario_cls = registry.get("scenario", req.scenario)
    if req.scenario not in task.card.scenarios:
        raise SettingsError(f"task {task.name!r} does not support scenario {req.scenario!r}; "
                            f"supported: {', '.join(task.card.scenarios)}")
    _check_loadgen(req)
    backend_cls = registry.get("backend", req.backend)
    if getattr(scenario_cls, "streaming", False) and backend_cls.run_stream is Backend.run_stream:
        raise BackendError(f"scenario {req.scenario!r} streams tokens, but backend {req.backend!r} cannot "
                           f"stream (it does not implement run_stream); use a backend that streams")
    model, model_path = task.model_card(req.model_variant)
    if getattr(scenario_cls, "streaming", False) and backend_cls.reads_model and model.generation is None:
        raise SettingsError(f"scenario {req.scenario!r} streams tokens, but model {model.name!r} of task "
                            f"{task.name!r} has no generation spec in its model card (not a generative model)")
    settings, compliant = resolve_scenario_settings(task, scenario_cls, req.scenario_settings, req.quick)
    if req.loadgen == "mlperf":
        from runner.official_loadgen import check_settings

        check_settings(req.scenario, settings)
    cpus = None if req.cpus is None else validate_cpus(req.cpus)
    scenario = scenario_cls(settings)
    plan = scenario.arrange(cpus or available_cpus()) if req.loadgen == "infersight" else None
    backend_settings = dict(req.backend_settings)
    if plan is not None and plan.backend_cpus and "cpus" not in backend_settings:
        backend_settings["cpus"] = format_cpus(plan.backend_cpus)
    backend = backend_cls(_validate(backend_cls.Settings, backend_settings, f"backend {req.backend}"))
    pipeline = task.pipeline(model)
    if pipeline is not None:
        backend = PipelineBackend(backend, pipeline)
    _check_backend_cpus(backend.settings.cpus, cpus or available_cpus())
    system = _system_card(req.system_extra, cpus, plan)
    return PreparedRun(req, task, model, model_path, backend, scenario, compliant, system, cpus, plan)


def _check_backend_cpus(spec: str | None, run_cpus: list[int]) -> None:
    """The backend's CPUs (backend setting `cpus`) must be CPUs the run may use."""
    outside = [] if spec is None else sorted(set(parse_cpus(spec)) - set(run_cpus))
    if outside:
        raise SettingsError(f"backend setting cpus={spec}: CPU(s) {format_cpus(outside)} are not among the CPUs the "
                            f"run may use ({format_cpus(run_cpus)})")


def _check_loadgen(req: RunRequest) -> None:
    if req.loadgen == "infersight":
        return
    if req.loadgen != "mlperf":
        raise SettingsError(f"unknown load generator {req.loadgen!r}; known: infersight, mlperf")
    from runner.official_loadgen import SUPPORTED, _lg

    _lg()
    if req.scenario not in SUPPORTED:
        raise SettingsError(f"--loadgen mlperf supports {', '.join(SUPPORTED)}, not {req.scenario!r}")


def _system_card(extra: dict[str, Any], cpus: list[int] | None, plan: Any) -> SystemCard:
    try:
        return capture_system(extra, cpus, None if plan is None else plan.to_dict())
    except ValidationError as exc:
        raise CardError(format_errors(exc, "system card extra fields")) from None


def resolve_scenario_settings(task: Task, scenario_cls: type[Scenario], overrides: dict[str, Any],
                              quick: bool) -> tuple[Any, bool]:
    """Defaults <- task card <- quick minimums <- user overrides; also whether the run is compliant."""
    card = dict(task.card.scenarios.get(scenario_cls.name) or {})
    baseline = _validate(scenario_cls.Settings, card, f"task card scenarios.{scenario_cls.name}")
    merged = {**card, **(scenario_cls.quick_settings if quick else {}), **overrides}
    settings = _validate(scenario_cls.Settings, merged, f"scenario {scenario_cls.name}")
    lowered = [k for k, v in settings.to_dict().items()
               if k.startswith("min_") and isinstance(v, (int, float)) and v < getattr(baseline, k)]
    return settings, not quick and not lowered


def _validate(model: Any, data: dict[str, Any], where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(format_errors(exc, where)) from None


def execute_run(prep: PreparedRun, store: Store, reporter: Reporter | None = None) -> int:
    """Measure and store one run; returns its id. Ctrl-C or SIGTERM marks the run aborted.

    A run with `cpus` pins the process to them from loading the model to teardown, then restores it.
    """
    start_run_window()
    with affinity_kept(), pinned(prep.cpus) as in_effect:
        if prep.cpus is not None and in_effect != prep.cpus:
            raise SettingsError(f"--cpus {format_cpus(prep.cpus)}: the process runs on CPUs "
                                f"{format_cpus(in_effect)} after pinning (a cpuset or container limit?)")
        return _execute(prep, store, reporter)


def _execute(prep: PreparedRun, store: Store, reporter: Reporter | None) -> int:
    rep = reporter or Reporter()
    with interrupts.watched():  # Ctrl-C and SIGTERM: KeyboardInterrupt, remembered even if swallowed
        rep.phase("loading model")
        if prep.plan is not None and prep.plan.warning:
            rep.warn(prep.plan.warning)
        prepare_backend(prep)
        interrupts.check()
        run_id = _create_run(prep, store)
        try:
            _measure(prep, store, run_id, rep)
        except KeyboardInterrupt:
            _until_stored(lambda: store.mark_aborted(run_id, "interrupted (Ctrl-C or SIGTERM) before the run "
                                                             "finished"), rep.phase)
            raise
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            _until_stored(lambda: store.finish_run(run_id, status="failed", error=error), rep.phase)
            raise
        finally:
            prep.backend.teardown()
    return run_id


def _until_stored(write: Callable[[], None], say: Callable[[str], None], wait_s: float = END_WAIT_S) -> None:
    """Record how a run ended; on a full disk retry (backing off) until space allows or wait_s passes.

    Past wait_s the run stays 'running' and the next open of the store marks it aborted.
    """
    deadline, pause = time.monotonic() + wait_s, 0.05
    while True:
        try:
            write()
            return
        except StoreError as exc:
            if "disk is full" not in str(exc) or time.monotonic() > deadline:
                return
            if pause == 0.05:
                say(f"the disk is full: waiting up to {wait_s:.0f} s for space to record how the run ended")
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def prepare_backend(prep: PreparedRun) -> None:
    """Load the model into the backend on the CPUs of its setting `cpus`: the calling thread is pinned to them
    while the backend prepares, so every thread the backend starts (onnxruntime's intra-op pool, OpenVINO's
    streams) inherits them; the calling thread's own CPUs are restored after."""
    cpus = prep.backend.settings.cpus
    with thread_pinned(None if cpus is None else parse_cpus(cpus)):
        prep.backend.prepare(prep.model, prep.model_path)


def _create_run(prep: PreparedRun, store: Store) -> int:
    req = prep.request
    cards = {"task": (prep.task.card, prep.task.name), "model": (prep.model, prep.model.name),
             "backend": (prep.backend.card(), prep.backend.name),
             "system": (prep.system, None)}
    hashes = {}
    for kind, (card, name) in cards.items():
        hashes[kind] = store.put_card(kind, card.to_dict(), card.card_hash(),
                                      name or getattr(card, "system_name", kind))
    settings = {"scenario": prep.scenario.settings.to_dict(), "backend": prep.backend.effective_settings(),
                "model_variant": req.model_variant, "quick": req.quick, "loadgen": req.loadgen}
    if req.task != prep.task.name:  # opened from its card's path (or a user task folder): say which card
        settings["task_card"] = str(prep.task.card_file)
    return store.create_run(task_name=prep.task.name, task_version=prep.task.card.metadata.version,
                            model_variant=req.model_variant, backend_name=prep.backend.name,
                            scenario=prep.scenario.name, card_hashes=hashes, settings=settings,
                            quick=req.quick, compliant=prep.compliant, provenance="measured",
                            source=_source(req), label=req.label)


def _source(req: RunRequest) -> str:
    source = f"infersight {distribution_version('infersight')}"
    if req.loadgen == "mlperf":
        source += f" via MLCommons LoadGen {distribution_version('mlcommons-loadgen')}"
    return source


def _measure(prep: PreparedRun, store: Store, run_id: int, rep: Reporter) -> None:
    qsl = prep.task.sample_library()
    sut = BackendSUT(prep.backend, qsl)
    sink = lambda rec: store.append_perf_samples(run_id, rec)  # noqa: E731
    if prep.request.loadgen == "mlperf":
        from runner.official_loadgen import run_official

        rep.phase(f"{prep.scenario.name} under MLCommons LoadGen: performance and accuracy passes")
        result, accuracy, _ = run_official(prep, sut, sink)
    else:
        rep.phase(f"{prep.scenario.name}: warm-up and timed run")
        result = prep.scenario.run(sut, qsl, sink=sink, progress=rep.update)
        rep.phase("accuracy pass")
        accuracy = accuracy_pass(prep.task, sut, qsl.total_sample_count, prep.model)
    store.put_accuracy_samples(run_id, accuracy.sample_index.tolist(), accuracy.predictions,
                               accuracy.references, accuracy.correct)
    _finish(prep, store, run_id, result, accuracy)


def accuracy_pass(task: Task, sut: BackendSUT, total: int, model: ModelCard) -> AccuracyResult:
    """Run every sample once (LoadGen's AccuracyOnly mode) and score the outputs."""
    index = np.arange(total)
    batches = sut.issue_query(index, keep_outputs=True) or []
    outputs = [np.concatenate([b[i] for b in batches]) for i in range(len(batches[0]))]
    return task.evaluate(index, outputs, model)


def _finish(prep: PreparedRun, store: Store, run_id: int, result: ScenarioResult, acc: AccuracyResult) -> None:
    from runner.validate import check_run

    interrupts.check()  # an interrupt swallowed on its way (a bare except in a library) still aborts the run
    summary = {**result.summary, **memory_summary(), "effective_settings": result.effective_settings}
    summary.update(_summary_plugins(store, run_id, result))
    store.record_result(run_id, validity=result.validity, validity_reasons=result.reasons,
                     headline_metric=result.headline_metric, headline_value=result.headline_value,
                     headline_units=result.headline_units, summary=summary,
                     accuracy_metric=acc.metric, accuracy_value=acc.value, accuracy_target=acc.target,
                     accuracy_passed=acc.passed)
    problems = check_run(store, run_id)
    if problems:
        store.finish_run(run_id, status="failed", error="; ".join(problems))
        raise InfersightError(f"run {run_id} is incomplete: " + "; ".join(problems))
    interrupts.check()
    store.finish_run(run_id, status="complete")


def _summary_plugins(store: Store, run_id: int, result: ScenarioResult) -> dict[str, Any]:
    """What each summary plugin (entry points `infersight.summaries`, e.g. `ci` from analysis/) adds
    to the summary of a finished run, under the plugin's name.

    A plugin is a callable (performance log, effective scenario settings) -> JSON-able dict; runner/
    finds it through the registry and never imports the layer that provides it. A failure is
    recorded in place of its figures and never loses the run (`infersight analyze` computes the
    intervals again from the performance log).
    """
    out: dict[str, Any] = {}
    names = registry.names("summary")
    records = store.read_perf_samples(run_id) if names else {}
    for name in names:
        try:
            out[name] = registry.get("summary", name)(records, result.effective_settings)
        except Exception as exc:  # noqa: BLE001 - a summary must never cost a measured run
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
