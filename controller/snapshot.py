"""What the loop decides on: a frozen picture of the site and its sessions.

:meth:`controller.state.SiteState.snapshot` makes one per decision; everything that
decides reads these and nothing else of the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.learning import EvBelief
from controller.meter_book import MeterView
from controller.model import PhaseValues, SessionNeeds
from controller.restored import Restored


@dataclass(frozen=True, slots=True)
class SessionView:
    """A running session as the loop sees it (charger phases, 0=L1)."""

    key: str
    charger_id: str
    connector_id: int
    transaction_id: int
    started_at: float
    status: str
    measured_a: PhaseValues | None
    measured_at: float | None
    offered_a: float | None
    belief: EvBelief
    draw_at_meter_a: PhaseValues | None = None
    """The draw at the time of the last good meter reading (for the base load)."""
    needs: SessionNeeds | None = None
    """Departure, energy, EV limits and priority, as far as anyone has said."""
    draw_at_node_meter_a: Mapping[str, PhaseValues | None] = field(default_factory=dict)
    """The draw at the time of each group meter's last good reading, by node."""
    external_limit_a: float | None = None
    """The lowest limit others set on this EVSE (2.0.1 NotifyChargingLimit), A per phase."""
    delivered_since_needs_wh: float = 0.0
    """Energy the charger's register counted since ``needs.energy_wh`` was said (0 when
    unknown): the need still open is the difference."""
    needs_register_wh: float | None = None
    """The energy register when ``needs.energy_wh`` was said (for the state store)."""
    meter_start_wh: float | None = None
    """The register at StartTransaction (``None`` for an adopted session)."""
    restored: Restored | None = None
    """Set while the session comes from the state store and its charger has not reported it."""
    reports: tuple[tuple[float, PhaseValues], ...] = ()
    """The last reports of the draw, (arrival time, per charger phase), oldest first: the
    base load bounds each car's draw at each meter reading with them."""


@dataclass(frozen=True, slots=True)
class SiteSnapshot:
    """A frozen picture of the site at ``at``: the loop decides on this alone."""

    at: float
    meter: MeterView
    sessions: tuple[SessionView, ...]
    connected: frozenset[str]
    booted: frozenset[str]
    meters: Mapping[str, MeterView] = field(default_factory=dict)
    """Every metered node's view, by node id (the site's is also ``meter``)."""
    charger_limits_a: Mapping[str, float] = field(default_factory=dict)
    """Limits others set on whole chargers (2.0.1 NotifyChargingLimit on EVSE 0), A per phase."""
    site_readings: tuple[MeterView, ...] = ()
    """The site meter's last good readings, oldest first (every poll, for the base load)."""
    group_readings: Mapping[str, tuple[MeterView, ...]] = field(default_factory=dict)
    """Each metered group's last good readings, by node, oldest first (as ``site_readings``)."""
    failsafe_pending: frozenset[str] = frozenset()
    """Chargers told their fail-safe default (on boot) that have not accepted it since they
    last booted: a new session there may draw the charger's rating until its setpoint is
    accepted."""
    untrusted: Mapping[str, str] = field(default_factory=dict)
    """Chargers whose composite schedule contradicted their fail-safe default, and why: they
    may draw their rating whatever they are told (:mod:`controller.untrusted`)."""
