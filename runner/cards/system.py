"""The system card: the machine a result was measured on, in MLPerf's system-description field names.

Captured automatically by `capture_system()`; users may add the optional price, power and
availability fields (and any MLPerf field) through a YAML file (`--system-extra`).
Imported results carry their submitter's system JSON through `SystemCard.from_mlperf`, which
keeps every field: the ones this card knows in their fields, the rest in `other_fields`.
Format version history:
  1 (2026-11): MLPerf v4.1 system JSON fields, plus host details, package versions, price/power.
  1 (2026-12): + other_fields (left out of the dict, and hash, while empty).
  1 (2027-01): + cpus_used, cpu_count_used (the cores a pinned run used; left out while None, so an
               unpinned run's card, and hash, is unchanged); accelerator memory from nvidia-smi.
  1 (2027-02): + issuer_cpu, backend_cpus (a server run's CPU isolation between the load generator
               and the system: runner.loadgen.isolation) and timing_calibration (this machine's
               sleep overshoot and hand-over cost, runner.loadgen.calibration); left out while None.
               The calibration is a measurement of the machine, re-taken when stale, not part of its
               configuration: it is left out of the card's hash, so runs on either side of a
               re-calibration stay replicas (each run's summary keeps the calibration it used,
               `issuing.calibration`; the stored card shows the one of the first run with its hash).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal

import psutil
from pydantic import Field, ValidationError

from runner.cards._base import StrictModel, card_hash, format_errors, load_yaml_with_lines
from runner.cards._compat import omit_added_defaults
from runner.cpus import available_cpus
from runner.errors import CardError

__all__ = ["SystemCard", "capture_system", "load_system_extra", "nvidia_gpus", "cpu_model", "KEY_PACKAGES", "MLPERF_FIELDS"]

IntOrStr = int | str

KEY_PACKAGES = ("infersight", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "openvino",
                "sqlalchemy", "pydantic", "scikit-learn")


class SystemCard(StrictModel):
    card_version: Literal[1] = 1
    # MLPerf system description fields (names as in MLPerf's systems/*.json).
    submitter: str = ""
    division: str = ""
    system_type: str = ""
    system_type_detail: str = ""
    status: str = ""
    system_name: str = Field(min_length=1, description="The system's name (never empty: results are grouped by it).")
    number_of_nodes: IntOrStr = 1
    host_processor_model_name: str
    host_processors_per_node: IntOrStr = 1
    host_processor_core_count: IntOrStr
    host_processor_frequency: str = ""
    host_processor_caches: str = ""
    host_processor_interconnect: str = ""
    host_processor_url: str = ""
    host_memory_capacity: str
    host_memory_configuration: str = ""
    host_storage_type: str = ""
    host_storage_capacity: str = ""
    host_networking: str = ""
    host_networking_topology: str = ""
    host_network_card_count: str = ""
    accelerators_per_node: IntOrStr = 0
    accelerator_model_name: str = ""
    accelerator_frequency: str = ""
    accelerator_host_interconnect: str = ""
    accelerator_interconnect: str = ""
    accelerator_interconnect_topology: str = ""
    accelerator_memory_capacity: str = ""
    accelerator_memory_configuration: str = ""
    accelerator_on_chip_memories: str = Field(default="", alias="accelerator_on-chip_memories")
    cooling: str = ""
    hw_notes: str = ""
    framework: str = ""
    operating_system: str
    other_software_stack: str | dict[str, Any] = ""
    sw_notes: str = ""
    boot_firmware_version: str = ""
    management_firmware_version: str = ""
    disk_controllers: str = ""
    disk_drives: str = ""
    filesystem: str = ""
    network_speed_mbit: str = ""
    nics_enabled_connected: str = ""
    nics_enabled_firmware: str = ""
    nics_enabled_os: str = ""
    number_of_type_nics_installed: str = ""
    other_hardware: str = ""
    power_management: str = ""
    power_supply_details: str = ""
    power_supply_quantity_and_rating_watts: str = ""
    # infersight's own fields.
    host_processor_architecture: str = ""
    host_processor_logical_core_count: int | None = None
    host_memory_bytes: int | None = None
    python_version: str = ""
    package_versions: dict[str, str] = Field(default_factory=dict)
    # Optional fields users add for the decision engine (units in the names).
    price_per_hour_usd: float | None = Field(default=None, ge=0)
    purchase_price_usd: float | None = Field(default=None, ge=0)
    power_w: float | None = Field(default=None, ge=0, description="Typical power draw under load, watts.")
    availability: str = ""
    cpus_used: list[int] | None = Field(default=None, description="CPU ids the run was pinned to "
                                        "(None: every CPU of the machine).")
    cpu_count_used: int | None = Field(default=None, ge=1, description="Number of CPUs the run was pinned to.")
    issuer_cpu: int | None = Field(default=None, ge=0, description="The CPU the load generator's issuer process "
                                                                    "kept to itself (None: it had none).")
    backend_cpus: list[int] | None = Field(default=None, description="CPUs the backend's threads were kept on "
                                                                      "(None: every CPU of the run).")
    timing_calibration: dict[str, Any] | None = Field(default=None, description="This machine's measured sleep "
                                                      "overshoot and hand-over cost (us), the issuer spin they gave, "
                                                      "when and how they were measured.")
    other_fields: dict[str, Any] = Field(default_factory=dict,
                                         description="Fields of an imported system description this card does not know.")

    _ADDED: ClassVar[tuple[str, ...]] = ("other_fields", "cpus_used", "cpu_count_used", "issuer_cpu", "backend_cpus",
                                         "timing_calibration")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict; fields added after format 1 are left out at their defaults."""
        return omit_added_defaults(self, super().to_dict(), self._ADDED)

    def card_hash(self) -> str:
        """The hash of the card without its timing calibration (a measurement, not configuration)."""
        return card_hash(self.hashed_part(self.to_dict()))

    @staticmethod
    def hashed_part(data: dict[str, Any]) -> dict[str, Any]:
        """A system card dict as it is hashed: without `timing_calibration`."""
        return {k: v for k, v in data.items() if k != "timing_calibration"}

    @classmethod
    def from_mlperf(cls, data: dict[str, Any], source: str = "system JSON",
                    extra: dict[str, Any] | None = None) -> "SystemCard":
        """A card from an MLPerf system description, losing no field; CardError if a required one is missing.

        MLPerf fields this card knows go to their fields; unknown fields, and known ones whose value
        has another type than the card's (a list where text is expected, ...), go to `other_fields`
        unchanged. `extra` sets infersight's own fields (availability, ...).
        """
        known, other = {}, {}
        for key, value in data.items():
            (known if key in MLPERF_FIELDS else other)[key] = value
        for _ in range(2):
            try:
                return cls.model_validate({**known, **(extra or {}), "other_fields": other})
            except ValidationError as exc:
                misfits = {e["loc"][0] for e in exc.errors() if e["loc"] and e["loc"][0] in known
                           and e["type"] != "missing" and e["loc"][0] not in _REQUIRED}
                if not misfits:
                    raise CardError(format_errors(exc, source)) from None
                other.update({key: known.pop(key) for key in misfits})
        raise CardError(f"{source}: not a usable system description")


_INFERSIGHT_FIELDS = ("card_version", "host_processor_architecture", "host_processor_logical_core_count",
                      "host_memory_bytes", "python_version", "package_versions", "price_per_hour_usd",
                      "purchase_price_usd", "power_w", "availability", "other_fields", "cpus_used",
                      "cpu_count_used", "issuer_cpu", "backend_cpus", "timing_calibration")
MLPERF_FIELDS = frozenset(info.alias or name for name, info in SystemCard.model_fields.items()
                          if name not in _INFERSIGHT_FIELDS)
_REQUIRED = frozenset(info.alias or name for name, info in SystemCard.model_fields.items() if info.is_required())


def capture_system(extra: dict[str, Any] | None = None, cpus_used: list[int] | None = None,
                   issuing: dict[str, Any] | None = None) -> SystemCard:
    """Describe this machine: CPU, memory, accelerators, OS, Python and key package versions.

    `cpus_used` names the CPUs a run is pinned to; without it, a process already confined to
    fewer CPUs than the machine has (taskset, a cpuset) records its affinity. Volatile facts
    (load, free memory, clock speed at this instant) are left out so that the card, and so its
    hash, is the same for every run on the same machine and software. `issuing`: a server run's
    issuing plan (runner.loadgen.isolation.IssuePlan.to_dict()): its CPUs and calibration.
    """
    cpu = cpu_model()
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    mem = psutil.virtual_memory().total
    gpus = nvidia_gpus()
    fields: dict[str, Any] = {
        "system_name": f"{platform.node() or 'localhost'} ({cpu})",
        "system_type": "datacenter" if gpus else "edge",
        "status": "available",
        "host_processor_model_name": cpu,
        "host_processor_core_count": cores,
        "host_processor_logical_core_count": os.cpu_count() or cores,
        "host_processor_architecture": platform.machine(),
        "host_memory_capacity": f"{mem / 2**30:.0f} GB",
        "host_memory_bytes": mem,
        "accelerators_per_node": len(gpus),
        "accelerator_model_name": gpus[0][0] if gpus else "",
        "accelerator_memory_capacity": gpus[0][1] if gpus else "",
        "operating_system": _os_name(),
        "python_version": platform.python_version(),
        "package_versions": _package_versions(),
        "framework": _framework(),
    }
    fields.update(_cpus_fields(cpus_used))
    if issuing:
        fields.update(issuer_cpu=issuing.get("issuer_cpu"), backend_cpus=issuing.get("backend_cpus"),
                      timing_calibration=issuing.get("calibration"))
    fields.update(extra or {})
    return SystemCard.model_validate(fields)


def _cpus_fields(cpus_used: list[int] | None) -> dict[str, Any]:
    if cpus_used is None:
        affinity = available_cpus()
        cpus_used = affinity if len(affinity) < (os.cpu_count() or len(affinity)) else None
    return {} if cpus_used is None else {"cpus_used": list(cpus_used), "cpu_count_used": len(cpus_used)}


def load_system_extra(path: Path) -> dict[str, Any]:
    """Read a YAML file of system-card fields to add; errors name the file, line and field."""
    data, lines = load_yaml_with_lines(path)
    if not isinstance(data, dict):
        raise CardError(f"{path}:1: expected a mapping of system-card fields")
    try:
        capture_system(data)
    except ValidationError as exc:
        raise CardError(format_errors(exc, str(path), lines)) from None
    return data


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown CPU"
    match = re.search(r"^(model name|Model|Hardware)\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(2).strip() if match else (platform.processor() or platform.machine())


def nvidia_gpus() -> list[tuple[str, str]]:
    """(model name, memory capacity) of each NVIDIA GPU, from nvidia-smi."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [line.rsplit(",", 1) for line in out.splitlines() if line.strip()]
    return [(r[0].strip(), f"{int(r[1]) / 1024:.0f} GB" if len(r) == 2 and r[1].strip().isdigit() else "")
            for r in rows]


def _os_name() -> str:
    try:
        info = platform.freedesktop_os_release()
        name = info.get("PRETTY_NAME", platform.system())
    except OSError:
        name = platform.system()
    return f"{name}, kernel {platform.release()}"


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _framework() -> str:
    versions = _package_versions()
    parts = [f"{k} {versions[k]}" for k in ("onnxruntime", "onnxruntime-gpu", "openvino") if k in versions]
    return ", ".join(parts + [f"Python {sys.version.split()[0]}"])
