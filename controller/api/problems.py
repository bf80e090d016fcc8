"""Errors as RFC 9457 problem details (``application/problem+json``).

Every 4xx body names what was wrong: ``errors`` lists each field (a dotted
path into the body, the query or the path) with its reason. Bad input never
becomes a 5xx: validation, refusals and unknown resources are translated
here, once, at the edge.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.operator import PreconditionFailed, SettingsRejected

PROBLEM_JSON = "application/problem+json"


class FieldProblem(BaseModel):
    """One field and why it was refused."""

    field: str
    reason: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldProblem] = []


class ApiProblem(Exception):
    """Raised by a route: becomes a problem response with this status."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        errors: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.problem = ProblemDetails(
            title=title, status=status, detail=detail, errors=errors or []
        )
        self.headers = headers


def problem_response(
    problem: ProblemDetails, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


def _field(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(body)"


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldProblem(field=_field(tuple(e.get("loc", ()))), reason=str(e.get("msg", "invalid")))
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
    return problem_response(
        ProblemDetails(title="Invalid request", status=422, detail=detail, errors=errors)
    )


async def _api_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(exc.problem, exc.headers)


async def _rejected(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SettingsRejected)
    errors = [FieldProblem(field=p.field, reason=p.reason) for p in exc.problems]
    return problem_response(
        ProblemDetails(title="Settings refused", status=422, detail=str(exc), errors=errors)
    )


async def _precondition(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PreconditionFailed)
    problem = ProblemDetails(
        title="Precondition failed",
        status=412,
        detail=str(exc),
        errors=[FieldProblem(field="If-Match", reason="does not match the current ETag")],
    )
    return problem_response(problem, {"ETag": exc.current_etag})


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    problem = ProblemDetails(title=str(exc.detail), status=exc.status_code)
    return problem_response(problem, dict(exc.headers) if exc.headers else None)


def install(app: FastAPI) -> None:
    """Translate every error the routes may raise into a problem response."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(SettingsRejected, _rejected)
    app.add_exception_handler(PreconditionFailed, _precondition)
    app.add_exception_handler(StarletteHTTPException, _http)
