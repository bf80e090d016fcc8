"""SiteState: the one in-memory picture of a site, fed by adapter events.

Adapters call :meth:`SiteState.apply` with domain events; the loop calls
:meth:`SiteState.snapshot` to freeze what it decides on. Applying an event
never blocks and never raises for odd input: an event about an unknown
charger or transaction is recorded as a problem and otherwise ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog

from controller.charger_records import ChargerRecord, delivered_wh, merge_needs
from controller.config import ControlSettings, HeadroomConfig
from controller.learning import EvBelief, observe
from controller.meter_book import ANY_METER, MeterBook, MeterView
from controller.meters.node_settings import MeterSpec
from controller.model import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    ChargerMeasurement,
    ConnectorStatusChanged,
    Event,
    ExternalLimitChanged,
    MeterFailed,
    MeterReading,
    SessionNeeds,
    SessionStarted,
    SessionStopped,
    connector_key,
)
from controller.restored import Restored
from controller.restored_sessions import RestoredSessions
from controller.snapshot import SessionView, SiteSnapshot

log = structlog.get_logger(__name__)


class SiteState:
    """Mutable site state; only :meth:`apply` changes it."""

    def __init__(
        self,
        control: ControlSettings,
        meter_max_step_a: float = float("inf"),
        meters: Mapping[str, MeterSpec] | None = None,
        site_node: str = "site",
        wall: Callable[[], float] | None = None,
    ) -> None:
        """``meters`` by meter id (default: any meter is the site's); ``wall`` gives UNIX
        time at arrival, to age readings by their source timestamp."""
        self._control = control
        self._chargers: dict[str, ChargerRecord] = {}
        self._restored = RestoredSessions(self._chargers)
        specs = meters or {
            ANY_METER: MeterSpec(
                ANY_METER, site_node, True, control.meter_stale_s, meter_max_step_a
            )
        }
        self._site_node = site_node
        self._meters = MeterBook(specs, control.meter_frozen_s)
        self._wall = wall
        self.problems: list[str] = []
        self.settle_s: dict[str, float] = {}
        """Per charger, how long a car gets to follow a new offer before its draw teaches
        anything: ``control.ev_settle_s`` or the charger's learned response time if longer
        (set by the loop; a slow car is not mistaken for one that wants less)."""

    @classmethod
    def for_site(cls, config: HeadroomConfig, wall: Callable[[], float]) -> SiteState:
        """The state of ``config``'s site, its meters as configured; ``wall`` gives UNIX time."""
        return cls(
            config.control, config.meter_max_step_a(), config.meter_specs(), config.site.id, wall
        )

    def _charger(self, charger_id: str) -> ChargerRecord:
        return self._chargers.setdefault(charger_id, ChargerRecord())

    def apply(self, event: Event) -> None:
        """Record one event."""
        match event:
            case MeterReading() | MeterFailed():
                self._apply_meter(event)
            case ChargerConnected(charger_id=cid):
                charger = self._charger(cid)
                charger.connected, charger.booted = True, False
            case ChargerBooted(charger_id=cid):
                charger = self._charger(cid)
                charger.booted = True
                if not event.reconnected:  # it restarted: it may have lost its profiles
                    charger.failsafe_held = False
                    for connector in charger.connectors.values():
                        connector.resumed = None
            case ChargerDisconnected(charger_id=cid):
                charger = self._charger(cid)
                charger.connected, charger.booted, charger.failsafe_pending = False, False, False
            case ConnectorStatusChanged():
                connector = self._charger(event.charger_id).connector(event.connector_id)
                connector.status = event.status
                if event.status == "Available":
                    self._restored.drop(event.charger_id, connector, "connector Available")
            case SessionStarted():
                connector = self._charger(event.charger_id).connector(event.connector_id)
                if connector.transaction_id != event.transaction_id:
                    self._restored.drop(event.charger_id, connector, "another transaction started")
                connector.restored, connector.resumed, connector.reported_at = None, None, None
                connector.meter_start_wh = event.meter_start_wh
                connector.transaction_id = event.transaction_id
                connector.started_at = event.at
                connector.clear_reports()
                connector.belief = EvBelief()
            case SessionStopped():
                self._stop(event)
            case SessionNeeds():
                connector = self._charger(event.charger_id).connector(event.connector_id)
                connector.needs = merge_needs(connector.needs, event)
                if event.energy_wh is not None:  # a new need counts from the register now
                    last = connector.measurement
                    connector.needs_register_wh = last.energy_wh if last else None
            case ExternalLimitChanged():
                limits = self._charger(event.charger_id).external_limits_a
                if event.limit_a is None:
                    limits.pop((event.evse_id, event.source), None)
                else:
                    limits[(event.evse_id, event.source)] = event.limit_a
            case ChargerMeasurement():
                self._measure(event)

    def _apply_meter(self, event: MeterReading | MeterFailed) -> None:
        spec = self._meters.spec(event.meter_id)
        draw_a = self._chargers_draw_a(spec.chargers if spec else None)
        wall_now = self._wall() if self._wall is not None else None
        if not self._meters.apply(event, draw_a, wall_now):
            self._problem(f"reading from unknown meter {event.meter_id!r}")
        elif self._restored.confirming and spec is not None and spec.node == self._site_node:
            recent = self._meters.recent(self._site_node)
            if recent and recent[-1].good_at is not None:
                self._restored.confirm(recent[-1].good_at)

    def _chargers_draw_a(self, chargers: frozenset[str] | None) -> float:
        """The latest measured draw of ``chargers`` (None: all), summed over connectors
        and phases; connector 0 (a charger's own main meter) is not a session."""
        return sum(
            sum(value or 0.0 for value in m.current_a)
            for cid, charger in self._chargers.items()
            if chargers is None or cid in chargers
            for conn_id, c in charger.connectors.items()
            if conn_id != 0 and (m := c.measurement) is not None
        )

    def restore(self, view: SessionView) -> None:
        """A session from the state store
        (:meth:`~controller.restored_sessions.RestoredSessions.restore`)."""
        self._restored.restore(view)

    def take_resumed(self) -> list[tuple[str, int, Restored]]:
        """The restored sessions' setpoints, once each
        (:meth:`~controller.restored_sessions.RestoredSessions.take_resumed`)."""
        return self._restored.take_resumed()

    def failsafe_sent(self, charger_id: str, accepted: bool = False) -> None:
        """The charger is being given its fail-safe default, or (``accepted``) has it. One
        that holds it from before a reconnect without boot is not pending: it keeps it."""
        charger = self._charger(charger_id)
        charger.failsafe_held = charger.failsafe_held or accepted
        charger.failsafe_pending = not charger.failsafe_held

    def judged(self, charger_id: str, untrusted: str | None) -> None:
        """A check of the charger's fail-safe default: why it is not trusted, or None."""
        charger = self._charger(charger_id)
        if untrusted != charger.untrusted:
            level = log.error if untrusted else log.info
            level("charger trust", charger_id=charger_id, untrusted=untrusted)
        charger.untrusted = untrusted

    def refused(self, charger_id: str, connector_id: int, transaction_id: int) -> None:
        """The charger refused a TxProfile for ``transaction_id``: OCPP lets it refuse one
        only for a transaction it does not run, so a restored session of that id is stale."""
        connector = self._charger(charger_id).connector(connector_id)
        if connector.transaction_id == transaction_id:
            self._restored.drop(charger_id, connector, "its charger refused a TxProfile for it")

    def _stop(self, event: SessionStopped) -> None:
        for connector in self._charger(event.charger_id).connectors.values():
            if connector.transaction_id == event.transaction_id:
                connector.transaction_id, connector.restored = None, None
                connector.resumed, connector.reported_at = None, None
                connector.clear_reports()
                connector.needs, connector.needs_register_wh = None, None
                return
        self._problem(
            f"{event.charger_id}: StopTransaction for unknown transaction {event.transaction_id}"
        )

    def _measure(self, event: ChargerMeasurement) -> None:
        charger = self._charger(event.charger_id)
        connector = charger.connector(event.connector_id)
        if not self._restored.measured(charger, connector, event):
            return
        if event.transaction_id is not None and connector.transaction_id is None:
            # A transaction we never saw start (Headroom restarted, or the charger was
            # offline): adopt it, so the car is managed rather than left on its lease.
            log.info(
                "session adopted",
                charger_id=event.charger_id,
                connector_id=event.connector_id,
                transaction_id=event.transaction_id,
            )
            connector.transaction_id = event.transaction_id
            connector.started_at = event.at
            connector.belief = EvBelief()
            connector.meter_start_wh = None
        connector.add_report(event)
        if connector.needs is not None and connector.needs_register_wh is None:
            connector.needs_register_wh = event.energy_wh  # the first register after the need
        if connector.transaction_id is not None:
            connector.belief = observe(
                connector.belief,
                event.current_a,
                event.offered_a,
                event.at,
                self.settle_s.get(event.charger_id, self._control.ev_settle_s),
                self._control.ev_probe_a,
            )

    def _problem(self, text: str) -> None:
        log.warning("state problem", problem=text)
        self.problems = [*self.problems[-99:], text]

    def snapshot(self, at: float) -> SiteSnapshot:
        """Freeze the state as of ``at``."""
        meters = self._meters.views(at)
        meter = meters.get(self._site_node, MeterView())
        groups = [(node, view.good_at) for node, view in meters.items() if node != self._site_node]
        sessions = []
        for cid, charger in self._chargers.items():
            for conn_id, c in charger.connectors.items():
                if c.transaction_id is None:
                    continue
                m = c.measurement
                sessions.append(
                    SessionView(
                        key=connector_key(cid, conn_id),
                        charger_id=cid,
                        connector_id=conn_id,
                        transaction_id=c.transaction_id,
                        started_at=c.started_at,
                        status=c.status,
                        measured_a=m.current_a if m else None,
                        measured_at=m.at if m else None,
                        offered_a=m.offered_a if m else None,
                        belief=c.belief,
                        draw_at_meter_a=c.draw_at(meter.good_at),
                        draw_at_node_meter_a={node: c.draw_at(t) for node, t in groups},
                        needs=c.needs,
                        external_limit_a=charger.external_limit_a(conn_id),
                        delivered_since_needs_wh=delivered_wh(c),
                        needs_register_wh=c.needs_register_wh,
                        meter_start_wh=c.meter_start_wh,
                        restored=c.restored,
                        reports=c.reports,
                    )
                )
        return SiteSnapshot(
            at=at,
            meter=meter,
            sessions=tuple(sessions),
            connected=frozenset(c for c, s in self._chargers.items() if s.connected),
            booted=frozenset(c for c, s in self._chargers.items() if s.booted),
            meters=meters,
            charger_limits_a={
                cid: limit
                for cid, charger in self._chargers.items()
                if (limit := charger.external_limit_a(0)) is not None
            },
            site_readings=self._meters.recent(self._site_node),
            group_readings={
                node: self._meters.recent(node) for node in meters if node != self._site_node
            },
            failsafe_pending=frozenset(c for c, s in self._chargers.items() if s.failsafe_pending),
            untrusted={c: s.untrusted for c, s in self._chargers.items() if s.untrusted},
        )
