"""The API's read models, built from a running site controller.

Each view says where its numbers come from: the meter's last good reading,
the last decision's targets (with the constraint that bound each one), the
chargers' MeterValues. Nothing here changes the site.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from controller.model import PhaseValues, connector_key
from controller.overrides import active_schedules
from controller.service import SiteController
from controller.snapshot import SessionView


class MeterOut(BaseModel):
    current_a: list[float | None]
    power_w: float | None
    at: str | None


class LimitsOut(BaseModel):
    max_current_a: float | None
    max_power_kw: float | None
    safety_margin_a: float
    rated_max_current_a: float | None
    rated_max_power_kw: float | None
    active_schedules: list[str]


class GroupOut(BaseModel):
    """A group (feeder, panel): the limit in force and the configured rating under it."""

    id: str
    parent: str | None
    max_current_a: float | None
    max_power_kw: float | None
    rated_max_current_a: float | None
    rated_max_power_kw: float | None


class NodeModeOut(BaseModel):
    mode: str
    reason: str


class SiteOut(BaseModel):
    id: str
    mode: str
    mode_reason: str
    failsafe: bool
    node_modes: dict[str, NodeModeOut]
    """Each group with a meter of its own: its mode (normal, hold, failsafe) and why."""
    meter: MeterOut
    limits: LimitsOut
    groups: list[GroupOut]
    headroom_a: list[float | None]
    headroom_kw: float | None
    base_load_a: list[float]
    allocated_a: float
    decided_at: str | None
    settings_problem: str


class NeedsOut(BaseModel):
    departure_at: str | None
    energy_wh: float | None
    priority: float | None
    source: str


class SessionOut(BaseModel):
    charger_id: str
    connector_id: int
    transaction_id: int
    status: str
    setpoint_a: float | None
    binding: str | None
    measured_a: list[float | None]
    needs: NeedsOut | None


class ConnectorOut(BaseModel):
    id: int
    status: str
    setpoint_a: float | None
    binding: str | None
    measured_a: list[float | None]
    power_w: float | None
    energy_wh: float | None
    session: SessionOut | None


class ChargerOut(BaseModel):
    id: str
    connected: bool
    booted: bool
    priority: float
    max_current_a: float
    rated_max_current_a: float
    group: str | None
    connectors: list[ConnectorOut]
    response_time_s: float
    """How long this charger's cars take to follow a change: learned from their draw, the
    configured default until then."""
    response_learned: bool


def _phases(values: PhaseValues | None) -> list[float | None]:
    return [None if v is None else round(v, 2) for v in (values or (None, None, None))]


def site_view(site: SiteController) -> SiteOut:
    config, base, live = site.config, site.operator.base, site.live
    decision = live.decision
    limit_a = config.site.max_current_a
    bound_a = None if limit_a is None else limit_a - config.site.safety_margin_a
    headroom_a = [
        None if bound_a is None or v is None else round(bound_a - v, 2) for v in live.meter_a
    ]
    limit_w = config.site.max_power_w
    headroom_kw = (
        None
        if limit_w is None or live.meter_w is None
        else round((limit_w - live.meter_w) / 1000, 3)
    )
    now = site.clock.now()
    return SiteOut(
        id=config.site.id,
        mode=decision.mode.value if decision else "starting",
        mode_reason=decision.mode_reason if decision else "no decision yet",
        failsafe=decision is None or decision.mode.value == "failsafe",
        node_modes={
            node: NodeModeOut(mode=mode.value, reason=reason)
            for node, (mode, reason) in (decision.node_modes if decision else {}).items()
        },
        meter=MeterOut(current_a=_phases(live.meter_a), power_w=live.meter_w, at=live.meter_at),
        limits=LimitsOut(
            max_current_a=limit_a,
            max_power_kw=config.site.max_power_kw,
            safety_margin_a=config.site.safety_margin_a,
            rated_max_current_a=base.site.max_current_a,
            rated_max_power_kw=base.site.max_power_kw,
            active_schedules=[
                e.name or f"{e.start}-{e.end}"
                for e in active_schedules(site.operator.settings, now)
            ],
        ),
        groups=_groups(site),
        headroom_a=headroom_a,
        headroom_kw=headroom_kw,
        base_load_a=[round(v, 2) for v in decision.base_load_a] if decision else [0.0] * 3,
        allocated_a=round(sum(t.limit_a for t in decision.targets.values()), 2) if decision else 0,
        decided_at=live.decided_at,
        settings_problem=site.operator.problem,
    )


def _groups(site: SiteController) -> list[GroupOut]:
    rated = {g.id: g for g in site.operator.base.groups}
    return [
        GroupOut(
            id=g.id,
            parent=g.parent,
            max_current_a=g.max_current_a,
            max_power_kw=g.max_power_kw,
            rated_max_current_a=rated[g.id].max_current_a if g.id in rated else None,
            rated_max_power_kw=rated[g.id].max_power_kw if g.id in rated else None,
        )
        for g in site.config.groups
    ]


def _session(site: SiteController, s: SessionView) -> SessionOut:
    target = site.live.decision.targets.get(s.key) if site.live.decision else None
    needs = None
    if s.needs is not None:
        departure = s.needs.departure_at
        needs = NeedsOut(
            departure_at=None
            if departure is None
            else datetime.fromtimestamp(departure, UTC).isoformat(),
            energy_wh=s.needs.energy_wh,
            priority=s.needs.priority,
            source=s.needs.source,
        )
    return SessionOut(
        charger_id=s.charger_id,
        connector_id=s.connector_id,
        transaction_id=s.transaction_id,
        status=s.status,
        setpoint_a=target.limit_a if target else None,
        binding=target.reason if target else None,
        measured_a=_phases(s.measured_a),
        needs=needs,
    )


def sessions_view(site: SiteController) -> list[SessionOut]:
    snapshot = site.state.snapshot(site.clock.monotonic())
    return [_session(site, s) for s in snapshot.sessions]


def chargers_view(site: SiteController) -> list[ChargerOut]:
    sessions = {connector_key(s.charger_id, s.connector_id): s for s in sessions_view(site)}
    out = []
    for charger in site.config.chargers:
        rated = site.operator.base.charger(charger.id)
        live = site.live.chargers.get(charger.id)
        connectors = []
        for n in range(1, charger.connectors + 1):
            session = sessions.get(connector_key(charger.id, n))
            connectors.append(
                ConnectorOut(
                    id=n,
                    status=(live.status.get(n) if live else None) or "Unknown",
                    setpoint_a=session.setpoint_a if session else None,
                    binding=session.binding if session else None,
                    measured_a=_phases(live.draw_a.get(n) if live else None),
                    power_w=live.power_w.get(n) if live else None,
                    energy_wh=live.energy_wh.get(n) if live else None,
                    session=session,
                )
            )
        out.append(
            ChargerOut(
                id=charger.id,
                connected=bool(live and live.connected),
                booted=bool(live and live.booted),
                priority=charger.priority,
                max_current_a=charger.max_current_a,
                rated_max_current_a=rated.max_current_a if rated else charger.max_current_a,
                group=charger.group,
                connectors=connectors,
                response_time_s=round(site.loop.settling.response_s(charger.id), 2),
                response_learned=charger.id in site.loop.settling.book.observed_s,
            )
        )
    return out
