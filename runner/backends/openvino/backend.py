"""The OpenVINO backend: reads the task's ONNX files with ov.Core, compiles them for a device, runs infer requests.

With one stream a batch is one synchronous `infer` call. When the compiled model asks for
several infer requests (throughput hint, or num_streams > 1), each batch is split across
that many requests run asynchronously, one per stream, and the outputs are joined in order:
that is how OpenVINO's streams add throughput to a synchronous caller.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import openvino as ov
import openvino.properties as props
import openvino.properties.hint as hints

from runner.backends._stream import greedy_stream, stream_request
from runner.backends.base import Backend
from runner.backends.openvino.config import OpenVinoSettings
from runner.cards import ModelCard
from runner.cpus import available_cpus, usable_cores
from runner.errors import ModelFileError, SettingsError

__all__ = ["OpenVinoBackend"]

_HINTS = {"latency": hints.PerformanceMode.LATENCY, "throughput": hints.PerformanceMode.THROUGHPUT}
_PRECISIONS = {"f32": ov.Type.f32, "bf16": ov.Type.bf16}


@functools.lru_cache(maxsize=1)
def _core() -> ov.Core:
    """One OpenVINO Core per process (it loads the device plugins once)."""
    return ov.Core()


class OpenVinoBackend(Backend):
    """Runs ONNX models with OpenVINO on the CPU (or another OpenVINO device where present)."""

    name: ClassVar[str] = "openvino"
    runtime: ClassVar[str] = "openvino"
    Settings: ClassVar[type[OpenVinoSettings]] = OpenVinoSettings

    @classmethod
    def runtime_version(cls) -> str:
        return ov.get_version()

    @classmethod
    def check_available(cls, settings: OpenVinoSettings) -> None:
        """The device asked for must be one OpenVINO finds on this machine."""
        devices = _core().available_devices
        if settings.device not in devices:
            raise SettingsError(f"backend openvino: device {settings.device!r} not available in OpenVINO "
                                f"{ov.get_version()}; available: {', '.join(devices) or 'none'}")

    def prepare(self, model: ModelCard, model_path: Path) -> None:
        self.check_available(self.settings)
        self.model = model
        compiled = self._compile(_read(model_path), model_path)
        self._outputs = [_output(compiled, spec.name, model_path) for spec in model.outputs]
        count = max(1, int(compiled.get_property(props.optimal_number_of_infer_requests)))
        self._requests = [compiled.create_infer_request() for _ in range(count)]
        self._infer = self._requests[0].infer
        self._compiled = compiled
        self._per_thread = threading.local()
        self._owner = threading.get_ident()

    def run_batch(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        if threading.get_ident() != self._owner:  # concurrent scenarios: an infer request serves one thread
            return self._run_split(inputs, self._thread_requests())
        if len(self._requests) == 1:
            result = self._infer(inputs, share_inputs=True)
            return [result[o] for o in self._outputs]
        return self._run_split(inputs, self._requests)

    def _thread_requests(self) -> list[ov.InferRequest]:
        """The calling thread's own infer requests (as many as the thread that prepared the model has)."""
        requests = getattr(self._per_thread, "batch", None)
        if requests is None:
            requests = self._per_thread.batch = [self._compiled.create_infer_request()
                                                      for _ in self._requests]
        return requests

    def _run_split(self, inputs: Mapping[str, np.ndarray], requests: list[ov.InferRequest]) -> list[np.ndarray]:
        """Split the batch across the infer requests (one per stream), run them together, join in order."""
        n = len(next(iter(inputs.values())))
        bounds = np.linspace(0, n, min(n, len(requests)) + 1).astype(int)
        used = requests[:len(bounds) - 1]
        for req, lo, hi in zip(used, bounds[:-1], bounds[1:]):
            req.start_async({k: v[lo:hi] for k, v in inputs.items()}, share_inputs=True)
        for req in used:
            req.wait()
        return [np.concatenate([req.get_tensor(o).data for req in used]) for o in self._outputs]

    def run_stream(self, inputs: Mapping[str, np.ndarray]) -> Iterator[list[np.ndarray]]:
        """Greedy generation as the model card's generation spec says, on an infer request of the calling
        thread: prefill on the first next(), then one infer per further token with the state outputs fed back."""
        spec, feeds, count = stream_request(self.name, self.model, inputs)
        ports = [self._compiled.output(n) for n in (spec.logits_output, *(p.output for p in spec.state))]
        infer = self._stream_request().infer

        def step(f: dict[str, np.ndarray]) -> list[np.ndarray]:
            result = infer(f, share_outputs=False)
            return [result[port] for port in ports]

        return greedy_stream(step, spec, feeds, count)

    def _stream_request(self) -> ov.InferRequest:
        """This thread's infer request for streaming (an infer request serves one thread at a time)."""
        request = getattr(self._per_thread, "request", None)
        if request is None:
            request = self._per_thread.request = self._compiled.create_infer_request()
        return request

    def teardown(self) -> None:
        self._requests, self._infer, self._compiled = [], None, None
        self._per_thread = threading.local()

    def device(self) -> str:
        return self.settings.device.lower()

    def effective_settings(self) -> dict[str, Any]:
        compiled = getattr(self, "_compiled", None)
        if compiled is None:
            return self.settings.to_dict()
        return {**self.settings.to_dict(), **_read_back(compiled), "infer_requests": len(self._requests)}

    def _compile(self, model: ov.Model, model_path: Path) -> ov.CompiledModel:
        config = self._config()
        try:
            return _core().compile_model(model, self.settings.device, config)
        except RuntimeError as exc:
            shown = ", ".join(f"{k}={v}" for k, v in config.items())
            raise SettingsError(f"backend openvino: cannot compile {model_path.name} for {self.settings.device} "
                                f"with {shown or 'defaults'}: {_reason(exc)}") from None

    def _config(self) -> dict[str, Any]:
        s, config = self.settings, {}
        if s.performance_hint != "none":
            config[hints.performance_mode] = _HINTS[s.performance_hint]
        if s.num_streams is not None:
            config[props.num_streams] = s.num_streams
        threads = s.inference_num_threads or _pinned_threads()
        if threads and s.device.startswith("CPU"):
            config[props.inference_num_threads] = threads
        if s.inference_precision_hint != "auto":
            config[hints.inference_precision] = _PRECISIONS[s.inference_precision_hint]
        if s.cpus is not None and s.device.startswith("CPU"):
            # OpenVINO would pin its stream threads to CPUs of its own choosing (it read the whole machine's
            # mask when its plugin started): unpinned, they keep the mask they inherit (runner.run)
            config[hints.enable_cpu_pinning] = False
        return config


def _pinned_threads() -> int | None:
    """Threads for a process pinned to fewer CPUs than the machine has (else None: OpenVINO's default).

    OpenVINO reads the CPU mask once per process, when its CPU plugin starts; a run pinned later
    in the same process would otherwise get threads for CPUs it may no longer use.
    """
    return usable_cores() if len(available_cpus()) < (os.cpu_count() or 1) else None


def _read(model_path: Path) -> ov.Model:
    """The model read by OpenVINO; ModelFileError (its one message) for a file it cannot read."""
    with _native_output_held() as held:
        try:
            return _core().read_model(str(model_path))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError and its own types for bad files
            held.drop()  # the frontends' log lines (each tried the file in turn) add nothing to our message
            raise ModelFileError(f"{model_path}: OpenVINO cannot read the model: {_reason(exc)}") from None


class _Held:
    """What native code wrote to the process's stdout and stderr while held; written out unless dropped."""

    def __init__(self) -> None:
        self.dropped = False

    def drop(self) -> None:
        self.dropped = True


@contextlib.contextmanager
def _native_output_held() -> Iterator[_Held]:
    """Hold what native code writes to file descriptors 1 and 2 in the block (OpenVINO's frontends log
    there when a file is not theirs); it is written out afterwards unless the block dropped it."""
    held = _Held()
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(fd) for fd in (1, 2)]
        try:
            for fd in (1, 2):
                os.dup2(sink.fileno(), fd)
            yield held
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
        if not held.dropped:
            sink.seek(0)
            os.write(2, sink.read())


def _output(compiled: ov.CompiledModel, name: str, model_path: Path) -> Any:
    try:
        return compiled.output(name)
    except RuntimeError:
        names = [n for o in compiled.outputs for n in o.get_names()]
        raise ModelFileError(f"{model_path}: the model card names output {name!r}, the model has "
                             f"{', '.join(names)}") from None


def _read_back(compiled: ov.CompiledModel) -> dict[str, Any]:
    """The properties actually in effect, as the compiled model reports them."""
    get = compiled.get_property
    precision = get(hints.inference_precision)
    out = {"performance_hint": _text(get(hints.performance_mode)),
           "num_streams": _int(get(props.num_streams)),
           "inference_precision_hint": precision.get_type_name() if hasattr(precision, "get_type_name")
           else _text(precision),
           "execution_devices": list(get(props.execution_devices))}
    supported = get(props.supported_properties)
    for key, prop in (("inference_num_threads", props.inference_num_threads),
                      ("enable_cpu_pinning", hints.enable_cpu_pinning)):
        if prop in supported:
            out[key] = get(prop)
    return out


def _text(value: Any) -> str:
    """An OpenVINO enum value (or its string form) as lower-case text: THROUGHPUT -> throughput."""
    return str(getattr(value, "name", value)).lower()


def _int(value: Any) -> int:
    return int(value.to_integer()) if hasattr(value, "to_integer") else int(value)


def _reason(exc: Exception) -> str:
    """OpenVINO's own message without its 'Exception from src/...' source-location lines."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Exception from")]
    return (lines[0] if lines else type(exc).__name__)[:300]
