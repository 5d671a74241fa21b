"""Errors that reach users: each carries one clear message naming where and what."""

from __future__ import annotations

__all__ = ["InfersightError", "CardError", "PluginNotFound", "PluginUnavailable", "ModelFileError", "SettingsError",
           "BackendError", "IssuerError", "StoreError", "RunNotFound", "ImportFormatError", "BundleTooLarge",
           "EngineError", "DataError", "JobNotFound", "AccountError", "DamagedRowWarning"]


class InfersightError(Exception):
    """Base class for errors shown to users as one clear message (the CLI exits 2)."""

    exit_code = 2


class CardError(InfersightError):
    """A card (task, model, backend, system) is malformed: the message names file, line and field."""


class PluginNotFound(InfersightError):
    """An unknown task, backend or scenario name; the message lists the known ones."""


class PluginUnavailable(InfersightError):
    """A registered plugin cannot be loaded on this machine (its runtime is not installed or fails to import)."""


class ModelFileError(InfersightError):
    """A model file is missing, corrupt or does not match the sha256 in its model card."""


class DataError(InfersightError):
    """A task's data does not fit its model or card (a missing column or key, a shape or dtype the model's
    input cannot take, differing sample counts): the message names the file, the card line and the field."""


class SettingsError(InfersightError):
    """Impossible run settings (threads 0, negative durations, ...)."""


class BackendError(InfersightError):
    """A backend cannot do what was asked (e.g. streaming on a backend that cannot stream)."""


class IssuerError(InfersightError):
    """The server scenario's issuer process could not start or ended before its schedule was issued."""


class StoreError(InfersightError):
    """The results store cannot be opened or used: the message names the database URL and the problem."""


class RunNotFound(InfersightError):
    """No stored run matches the given id, uuid or uuid prefix (or a prefix matches several)."""


class JobNotFound(InfersightError):
    """No job of the job service (runner/jobs) has the given id."""


class AnalysisError(InfersightError):
    """Data the statistics layer cannot analyse as asked (too few samples or runs, NaNs, an empty
    history, runs whose checked metadata differs): the message says what and how to fix it."""


class ImportFormatError(InfersightError):
    """A file of an outside result (an MLPerf log, system JSON, ...) cannot be read as its format says.

    `file` and `line` (1-based, None for the whole file) say where; the importer turns the error
    into a skip entry of its report instead of stopping.
    """

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        self.file, self.line, self.problem = str(file), line, problem
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {problem}")


class BundleTooLarge(ImportFormatError):
    """A run bundle over a size limit (bytes received, bytes unpacked, number of files): refused unread."""


class EngineError(InfersightError):
    """A decision-engine request that cannot be answered as asked: an unknown task, scenario, metric or
    objective, a bad or contradictory bound, a malformed price catalogue (the message names file and line)."""


class AccountError(InfersightError):
    """A team-server user or API token that does not exist, exists already, or cannot have what was asked
    (an unknown role or scope, a scope its role does not allow)."""


class DamagedRowWarning(UserWarning):
    """A listing left out a stored row it could not read back; the message names the row and what is wrong."""
