"""What a job asks for: one run, a peak-QPS search or a sweep, as strict pydantic models (the REST API's
request bodies and the app's forms validate against these; `kind` tells them apart)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from runner.cards._base import StrictModel, format_errors
from runner.errors import SettingsError
from runner.peak import PeakSettings
from runner.run import RunRequest
from runner.store.jobs import JOB_KINDS
from runner.sweep.model import SweepFile

__all__ = ["RunJob", "PeakJob", "SweepJob", "JobRequest", "parse_request"]


class RunJob(StrictModel):
    """Measure one run, as `infersight run` does."""

    kind: Literal["run"] = Field("run", description="What the job does: one run.")
    task: str = Field(min_length=1, description="Task plugin name (see `infersight plugins`).",
                      examples=["digits"])
    backend: str = Field("onnxruntime", min_length=1, description="Backend plugin name.",
                         examples=["onnxruntime"])
    scenario: str = Field("offline", min_length=1, description="Scenario plugin name.", examples=["offline"])
    model_variant: str = Field("fp32", min_length=1, description="Model variant of the task (fp32, int8).")
    backend_settings: dict[str, Any] = Field(default_factory=dict, description="The backend's settings "
                                             "(as `--backend-set`), e.g. {\"intra_op_threads\": 2}.")
    scenario_settings: dict[str, Any] = Field(default_factory=dict, description="The scenario's settings "
                                              "(as `--set`), e.g. {\"target_qps\": 200}.")
    quick: bool = Field(False, description="Short minimums (1 s); the run is marked non-compliant.")
    label: str | None = Field(None, max_length=1000, description="Free text stored with the run.")
    cpus: str | None = Field(None, description="Pin the run to these CPUs (0, 0-1, 0,2); default: every CPU.")
    loadgen: Literal["infersight", "mlperf"] = Field("infersight", description="Load generator.")
    system_extra: dict[str, Any] = Field(default_factory=dict, description="System-card fields to add "
                                         "(price_per_hour_usd, power_w, ...).")

    def run_request(self) -> RunRequest:
        """The runner's request for this run."""
        fields = self.model_dump(exclude={"kind", "search"})
        return RunRequest(**fields)


class PeakJob(RunJob):
    """Search for the highest target QPS that stays VALID under the server scenario (`infersight
    peak`); every probe is a stored run."""

    kind: Literal["peak"] = Field("peak", description="What the job does: a peak-QPS search.")
    scenario: Literal["server"] = Field("server", description="A peak search measures the server scenario.")
    search: PeakSettings = Field(default_factory=PeakSettings, description="How the search brackets, bisects "
                                 "and repeats.")


class SweepJob(StrictModel):
    """A matrix of runs, as `infersight sweep FILE` with the sweep file's content inline."""

    kind: Literal["sweep"] = Field("sweep", description="What the job does: a sweep.")
    sweep: SweepFile = Field(description="The sweep, as a sweep file holds it.")


JobRequest = Annotated[RunJob | PeakJob | SweepJob, Field(discriminator="kind")]
_ADAPTER: TypeAdapter = TypeAdapter(JobRequest)


def parse_request(data: Mapping[str, Any] | RunJob | SweepJob | Any) -> RunJob | PeakJob | SweepJob:
    """A job request from a mapping (JSON), or SettingsError naming every bad field."""
    if isinstance(data, (RunJob, SweepJob)):
        return data
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if isinstance(data, Mapping) and kind not in JOB_KINDS:
        problem = "missing" if kind is None else f"{kind!r} is not a kind of job"
        raise SettingsError(f"job request: kind: {problem}: give one of {', '.join(JOB_KINDS)}")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise SettingsError(format_errors(exc, "job request")) from None
