"""GET routes: sites, chargers, connectors, sessions, the timeline, the audit log, the stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from controller.api.deps import Site, Viewer
from controller.api.problems import ApiProblem, ProblemDetails
from controller.api.views import (
    ChargerOut,
    ConnectorOut,
    SessionOut,
    SiteOut,
    chargers_view,
    sessions_view,
    site_view,
)
from controller.audit import AuditQuery, read_audit
from controller.service import SiteController

router = APIRouter(responses={401: {"model": ProblemDetails}, 404: {"model": ProblemDetails}})
STREAM_INTERVAL_S = 1.0
IsoTime = Annotated[str, Query(max_length=40, pattern=r"^\d{4}-\d\d-\d\dT[0-9:.+\-Z]*$")]


class Me(BaseModel):
    name: str
    role: str


class SiteSummary(BaseModel):
    id: str
    mode: str
    chargers: int


class TimelineOut(BaseModel):
    seq: int
    at: str
    kind: str
    summary: str
    charger_id: str | None
    connector_id: int | None


@router.get("/me", response_model=Me)
def me(who: Viewer) -> Me:
    """Who the token belongs to and its role."""
    return Me(name=who.name, role=who.role)


@router.get("/sites", response_model=list[SiteSummary])
def sites(request: Request, _: Viewer) -> list[SiteSummary]:
    """The sites this process runs."""
    running: Mapping[str, SiteController] = request.app.state.sites
    return [
        SiteSummary(id=sid, mode=site_view(s).mode, chargers=len(s.config.chargers))
        for sid, s in sorted(running.items())
    ]


@router.get("/sites/{site_id}", response_model=SiteOut)
def site_state(site: Site, _: Viewer) -> SiteOut:
    """Power per phase, limits, headroom and the mode (normal, hold, fail-safe)."""
    return site_view(site)


@router.get("/sites/{site_id}/chargers", response_model=list[ChargerOut])
def chargers(site: Site, _: Viewer) -> list[ChargerOut]:
    """Every configured charger with its connectors, setpoints and measured draw."""
    return chargers_view(site)


def _charger(site: SiteController, charger_id: str) -> ChargerOut:
    found = next((c for c in chargers_view(site) if c.id == charger_id), None)
    if found is None:
        raise ApiProblem(
            404, "Not found", f"no charger {charger_id!r} at site {site.config.site.id!r}"
        )
    return found


@router.get("/sites/{site_id}/chargers/{charger_id}", response_model=ChargerOut)
def charger(site: Site, charger_id: str, _: Viewer) -> ChargerOut:
    """One charger."""
    return _charger(site, charger_id)


@router.get(
    "/sites/{site_id}/chargers/{charger_id}/connectors/{connector_id}",
    response_model=ConnectorOut,
)
def connector(site: Site, charger_id: str, connector_id: int, _: Viewer) -> ConnectorOut:
    """One connector: status, session, setpoint and the constraint that binds it."""
    found = next((c for c in _charger(site, charger_id).connectors if c.id == connector_id), None)
    if found is None:
        raise ApiProblem(
            404, "Not found", f"charger {charger_id!r} has no connector {connector_id}"
        )
    return found


@router.get("/sites/{site_id}/sessions", response_model=list[SessionOut])
def sessions(site: Site, _: Viewer) -> list[SessionOut]:
    """Running sessions with their setpoints and needs."""
    return sessions_view(site)


@router.get("/sites/{site_id}/timeline", response_model=list[TimelineOut])
def timeline(
    site: Site,
    _: Viewer,
    charger_id: Annotated[str | None, Query(max_length=64)] = None,
    connector_id: Annotated[int | None, Query(ge=0, le=64)] = None,
    kind: Annotated[list[str] | None, Query(max_length=20)] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[TimelineOut]:
    """Recent events of the site, a charger or a connector (older history: the audit log)."""
    entries = site.live.entries(charger_id, connector_id, set(kind) if kind else None, after, limit)
    return [TimelineOut(**_fields(e)) for e in entries]


def _fields(entry: Any) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in TimelineOut.model_fields}


@router.get("/sites/{site_id}/audit", response_model=list[dict[str, Any]])
def audit(
    site: Site,
    _: Viewer,
    kind: Literal["all", "decisions", "commands", "changes"] = "all",
    since: IsoTime | None = None,
    until: IsoTime | None = None,
    charger_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    """The audit log: decisions, commands and operator changes (who, before, after)."""
    if site.config.audit is None:
        raise ApiProblem(404, "Not found", "this site keeps no audit log (no audit: in its config)")
    path = site.config.audit.path
    if not FilePath(path).exists():
        return []
    rows = list(read_audit(path, AuditQuery(since, until, charger_id, kind)))
    return rows[-limit:]


def stream_frame(site: SiteController) -> str:
    """One SSE frame: the site state and the chargers."""
    data = {
        "site": site_view(site).model_dump(),
        "chargers": [c.model_dump() for c in chargers_view(site)],
        "timeline_seq": site.live.timeline[-1].seq if site.live.timeline else 0,
    }
    return f"event: state\ndata: {json.dumps(data)}\n\n"


@router.get("/sites/{site_id}/stream", response_class=StreamingResponse)
async def stream(site: Site, _: Viewer, request: Request) -> StreamingResponse:
    """Server-Sent Events: the site state and chargers, once a second."""

    async def frames() -> AsyncIterator[str]:
        while not await request.is_disconnected():
            yield stream_frame(site)
            await asyncio.sleep(STREAM_INTERVAL_S)

    return StreamingResponse(
        frames(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
