"""The one way a service request is validated, and the base of every service request and record
(runner/, analysis/, engine/, reports/): a request is a validated, frozen pydantic model (unknown fields
are errors); a record is a frozen result, JSON-able with `to_dict`.

    request = CompareRequest.parse(refs=["3", "7"], margin=0.05)   # AnalysisError: "margin 5: ..." if bad
    record = analysis.services.compare(request, store)
    record.to_dict()                                              # what `--json` prints and the API sends

`X.parse(**fields)` raises the request's own InfersightError subclass (`X.error`: SettingsError for the
runner's requests, AnalysisError, EngineError, ...) with one line naming each bad field and its value, so
a command exits 2 and the REST API answers 4xx. `Parse` gives a pydantic dataclass (runner.run.RunRequest)
the same `parse`. A front door builds a request with `parse`, calls one service function and renders the
record; the same pydantic models give the API its schema.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from runner.errors import InfersightError, SettingsError

__all__ = ["Parse", "Request", "Record", "problems"]


def problems(exc: ValidationError) -> str:
    """`field.path value: message` for each problem of a ValidationError (the value where one was given and
    it is not a whole object), joined by '; '."""
    out = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(request)"
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        given = "" if err["type"] == "missing" or isinstance(err.get("input"), dict) else f" {err.get('input')!r}"
        out.append(f"{field}{given}: {message}")
    return "; ".join(out)


class Parse:
    """`parse(**fields)`: the validated request, or `error` naming each bad field and value."""

    error: ClassVar[type[InfersightError]] = SettingsError

    @classmethod
    def parse(cls, **fields: Any) -> Any:
        """The validated request, or `cls.error` of `ClassName: field value: message; ...`."""
        try:
            return TypeAdapter(cls).validate_python(fields)
        except ValidationError as exc:
            raise cls.error(f"{cls.__name__}: {problems(exc)}") from None


class Request(Parse, BaseModel):
    """A service request: strict (unknown fields are errors), frozen, finite numbers. `error` is the
    InfersightError subclass `parse` raises, so a bad request exits 2 with one line naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    error: ClassVar[type[InfersightError]] = SettingsError


class Record(BaseModel):
    """A service result: frozen, typed; nested figures stay as the statistics give them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible: NaN and infinity become None (an unknown figure, an unbounded interval side)."""
        return self.model_dump(mode="json")
