"""Settings routes: limits, schedules, group limits, charger priority/cap, session needs.

Every settings resource carries the ETag of the whole settings value; a write
with ``If-Match`` that names another version gets 412, so two managers
editing at once cannot overwrite each other unknowingly. Each accepted change
is persisted, audited with the token's name and applied from the next decision.

Each route names its role first: FastAPI resolves dependencies in parameter
order, so a caller without the role gets 403 before the site is looked up
or the body validated (only a body that is not JSON at all is refused
earlier, with 422).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from controller.api.deps import Admin, Manager, Site, Viewer
from controller.api.problems import ApiProblem, FieldProblem, ProblemDetails
from controller.model import SessionNeeds
from controller.overrides import ChargerOverride, LimitOverride, OperatorSettings, ScheduleEntry
from controller.service import SiteController

router = APIRouter(
    responses={
        401: {"model": ProblemDetails},
        403: {"model": ProblemDetails},
        404: {"model": ProblemDetails},
        412: {"model": ProblemDetails},
        422: {"model": ProblemDetails},
    }
)
IfMatch = Annotated[str | None, Header(max_length=100)]


class NeedsIn(BaseModel):
    """What a session needs: a departure time, the energy still wanted, a priority override."""

    model_config = {"extra": "forbid"}
    departure_at: datetime | None = None
    energy_wh: Annotated[float, Field(ge=0, le=1_000_000)] | None = None
    priority: Annotated[float, Field(gt=0, le=100)] | None = None


def _settings(site: SiteController, response: Response) -> OperatorSettings:
    response.headers["ETag"] = site.operator.settings.etag()
    return site.operator.settings


def _apply(
    site: SiteController, settings: OperatorSettings, who: str, if_match: str | None, what: str
) -> None:
    site.operator.update(settings, who, if_match, what)
    site.live.on_change(who, what, site.clock.now())


@router.get("/sites/{site_id}/settings", response_model=OperatorSettings)
def get_settings(site: Site, _: Viewer, response: Response) -> OperatorSettings:
    """The operator settings in force (the YAML config is the ceiling under them)."""
    return _settings(site, response)


@router.put("/sites/{site_id}/settings", response_model=OperatorSettings)
def put_settings(
    who: Admin, site: Site, body: OperatorSettings, response: Response, if_match: IfMatch = None
) -> OperatorSettings:
    """Replace every operator setting at once (admin)."""
    _apply(site, body, who.name, if_match, "settings")
    return _settings(site, response)


@router.put("/sites/{site_id}/settings/limit", response_model=OperatorSettings)
def put_limit(
    who: Manager, site: Site, body: LimitOverride, response: Response, if_match: IfMatch = None
) -> OperatorSettings:
    """The site limit now (null fields: the configured rating)."""
    new = site.operator.settings.model_copy(update={"site": body})
    _apply(site, new, who.name, if_match, "site limit")
    return _settings(site, response)


@router.put("/sites/{site_id}/settings/schedules", response_model=OperatorSettings)
def put_schedules(
    who: Manager,
    site: Site,
    body: Annotated[list[ScheduleEntry], Field(max_length=100)],
    response: Response,
    if_match: IfMatch = None,
) -> OperatorSettings:
    """Limits by weekday and time of day (the tightest active one holds)."""
    new = site.operator.settings.model_copy(update={"schedules": body})
    _apply(site, new, who.name, if_match, "schedules")
    return _settings(site, response)


@router.put("/sites/{site_id}/settings/groups/{group_id}", response_model=OperatorSettings)
def put_group(
    who: Manager,
    site: Site,
    group_id: str,
    body: LimitOverride,
    response: Response,
    if_match: IfMatch = None,
) -> OperatorSettings:
    """A group's (feeder's, panel's) limit."""
    groups = {**site.operator.settings.groups, group_id: body}
    new = site.operator.settings.model_copy(update={"groups": groups})
    _apply(site, new, who.name, if_match, f"group {group_id}")
    return _settings(site, response)


@router.put("/sites/{site_id}/settings/chargers/{charger_id}", response_model=OperatorSettings)
def put_charger(
    who: Manager,
    site: Site,
    charger_id: str,
    body: ChargerOverride,
    response: Response,
    if_match: IfMatch = None,
) -> OperatorSettings:
    """A charger's priority weight and cap."""
    chargers = {**site.operator.settings.chargers, charger_id: body}
    new = site.operator.settings.model_copy(update={"chargers": chargers})
    _apply(site, new, who.name, if_match, f"charger {charger_id}")
    return _settings(site, response)


@router.put("/sites/{site_id}/sessions/{charger_id}/{connector_id}/needs", status_code=204)
def put_needs(
    who: Manager, site: Site, charger_id: str, connector_id: int, body: NeedsIn
) -> Response:
    """A running session's departure time, energy need and priority override."""
    snapshot = site.state.snapshot(site.clock.monotonic())
    session = next(
        (
            s
            for s in snapshot.sessions
            if (s.charger_id, s.connector_id) == (charger_id, connector_id)
        ),
        None,
    )
    if session is None:
        raise ApiProblem(404, "Not found", f"no running session on {charger_id}/{connector_id}")
    departure = body.departure_at
    if departure is not None and departure.tzinfo is None:
        raise ApiProblem(
            422,
            "Invalid request",
            "departure_at needs a time zone offset",
            errors=[FieldProblem(field="departure_at", reason="no time zone offset (add Z)")],
        )
    site.sink(
        SessionNeeds(
            charger_id,
            connector_id,
            site.clock.monotonic(),
            departure_at=None if departure is None else departure.timestamp(),
            energy_wh=body.energy_wh,
            priority=body.priority,
            source="operator",
        )
    )
    site.operator.record(
        who.name, f"session {charger_id}/{connector_id}", None, body.model_dump(mode="json")
    )
    site.live.on_change(who.name, f"session {charger_id}/{connector_id} needs", site.clock.now())
    return Response(status_code=204)
