"""What the routes depend on: the caller's identity and role, the addressed site."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.api.auth import Principal, TokenBook
from controller.api.problems import ApiProblem
from controller.service import SiteController

_bearer = HTTPBearer(auto_error=False, description="an API token from api.tokens")
SiteId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.\-]+$", max_length=64)]


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller: 401 without a known bearer token."""
    book: TokenBook = request.app.state.tokens
    found = book.identify(credentials.credentials) if credentials is not None else None
    if found is None:
        raise ApiProblem(
            401,
            "Unauthorized",
            "send Authorization: Bearer <token> with a token from api.tokens",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


def requires(role: str) -> Callable[[Principal], Principal]:
    """A dependency that admits ``role`` and above (403 otherwise)."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.may(role):
            raise ApiProblem(
                403, "Forbidden", f"this needs the {role} role; {who.name} is {who.role}"
            )
        return who

    return check


Viewer = Annotated[Principal, Depends(requires("viewer"))]
Manager = Annotated[Principal, Depends(requires("manager"))]
Admin = Annotated[Principal, Depends(requires("admin"))]


def site(request: Request, site_id: SiteId) -> SiteController:
    """The addressed site's running controller: 404 if the process runs no such site."""
    sites: Mapping[str, SiteController] = request.app.state.sites
    found = sites.get(site_id)
    if found is None:
        raise ApiProblem(404, "Not found", f"no site {site_id!r} in this process")
    return found


Site = Annotated[SiteController, Depends(site)]
