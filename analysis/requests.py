"""The base of every service request and record (analysis/, engine/, reports/): a request is a validated,
frozen pydantic model (unknown fields are errors); a record is a frozen result, JSON-able with `to_dict`.

    request = CompareRequest.parse(refs=["3", "7"], margin=0.05)   # AnalysisError: "margin: ..." if bad
    record = service.compare(request, store)
    record.to_dict()                                              # what `--json` prints and the API sends

A front door (CLI, app, REST API) builds a request with `parse`, calls one service function and renders
the record; the same pydantic models give the API its schema.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from runner.errors import InfersightError

__all__ = ["Request", "Record", "problems"]


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


class Request(BaseModel):
    """A service request: strict (unknown fields are errors), frozen, finite numbers. `error` is the
    InfersightError subclass `parse` raises, so a bad request exits 2 with one line naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    error: ClassVar[type[InfersightError]] = InfersightError

    @classmethod
    def parse(cls, **fields: Any) -> Any:
        """The validated request, or `cls.error` naming each bad field."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise cls.error(f"{cls.__name__}: {problems(exc)}") from None


class Record(BaseModel):
    """A service result: frozen, typed; nested figures stay as the statistics give them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible: NaN and infinity become None (an unknown figure, an unbounded interval side)."""
        return self.model_dump(mode="json")
