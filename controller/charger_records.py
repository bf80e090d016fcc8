"""What the site state keeps of each charger and connector, between events.

:class:`~controller.state.SiteState` owns one :class:`ChargerRecord` per charger; its
snapshot turns the connectors with a session into
:class:`~controller.snapshot.SessionView`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

from controller.learning import EvBelief
from controller.model import ChargerMeasurement, PhaseValues, SessionNeeds
from controller.restored import Restored

HISTORY = 8  # measurements kept per connector: enough to line one up with the meter reading


@dataclass
class ConnectorRecord:
    """One connector: its status, the session on it and the charger's last reports of it."""

    status: str = "Unknown"
    transaction_id: int | None = None
    started_at: float = 0.0
    history: deque[ChargerMeasurement] = field(default_factory=lambda: deque(maxlen=HISTORY))
    """The charger's last reports, oldest first: changed only by :meth:`add_report` and
    :meth:`clear_reports` (they keep :attr:`reports` in step)."""
    belief: EvBelief = field(default_factory=EvBelief)
    needs: SessionNeeds | None = None
    needs_register_wh: float | None = None  # the energy register when the need was said
    meter_start_wh: float | None = None
    restored: Restored | None = None  # from the state store, not yet confirmed by the charger
    reported_at: float | None = None  # a restored session's first report, awaiting a reading
    resumed: Restored | None = None
    """From the state store, kept past the confirmation until the loop takes it, the
    session ends or the charger boots (it may have lost its profiles)."""
    _reports: tuple[tuple[float, PhaseValues], ...] | None = field(default=None, repr=False)

    @property
    def measurement(self) -> ChargerMeasurement | None:
        return self.history[-1] if self.history else None

    def add_report(self, measurement: ChargerMeasurement) -> None:
        """Keep the charger's report (the oldest leaves a full history)."""
        self.history.append(measurement)
        self._reports = None

    def clear_reports(self) -> None:
        """Forget the reports (a session starts or ends)."""
        self.history.clear()
        self._reports = None

    @property
    def reports(self) -> tuple[tuple[float, PhaseValues], ...]:
        """The reports as (arrival time, draw per phase), oldest first: built once per new
        report, not once per snapshot (every decision takes one per session)."""
        if self._reports is None:
            self._reports = tuple((m.at, m.current_a) for m in self.history)
        return self._reports

    def draw_at(self, at: float | None) -> PhaseValues | None:
        """The draw per phase at ``at``, interpolated between the reports around it.

        The meter and the charger sample at different instants; the best estimate
        of what the meter saw of this charger lies between the report before the
        reading and the one after (once it has arrived).
        """
        if at is None:
            return None
        before = next((m for m in reversed(self.history) if m.at <= at), None)
        after = next((m for m in self.history if m.at > at), None)
        if before is None:
            # No report from before the reading (the session has just started): the first
            # one after it is the nearest estimate, if it has arrived.
            return after.current_a if after is not None else None
        if after is None:
            return before.current_a
        share = (at - before.at) / (after.at - before.at)
        return tuple(  # type: ignore[return-value]
            (b or 0.0) + share * ((a or 0.0) - (b or 0.0))
            for b, a in zip(before.current_a, after.current_a, strict=True)
        )


@dataclass
class ChargerRecord:
    """One charger: its link, its connectors, limits others set, fail-safe and trust."""

    connected: bool = False
    booted: bool = False
    connectors: dict[int, ConnectorRecord] = field(default_factory=dict)
    external_limits_a: dict[tuple[int, str], float] = field(default_factory=dict)
    """By (EVSE, source): limits set by others; they hold until cleared, across reconnects."""
    failsafe_pending: bool = False
    failsafe_held: bool = False
    """It accepted its fail-safe default since it last booted: a reconnect keeps it."""
    untrusted: str | None = None
    """Why the charger is not trusted to apply profiles; kept until a check says otherwise."""

    def external_limit_a(self, evse_id: int) -> float | None:
        """The lowest limit in force on ``evse_id`` (0 = the whole charger)."""
        if not self.external_limits_a:  # the usual case, asked per session per decision
            return None
        limits = [a for (evse, _), a in self.external_limits_a.items() if evse == evse_id]
        return min(limits) if limits else None

    def connector(self, connector_id: int) -> ConnectorRecord:
        return self.connectors.setdefault(connector_id, ConnectorRecord())


def merge_needs(old: SessionNeeds | None, new: SessionNeeds) -> SessionNeeds:
    """``new`` over ``old``: a field ``new`` leaves ``None`` keeps its old value."""
    if old is None:
        return new
    return replace(
        new,
        **{
            name: getattr(old, name)
            for name in (
                "departure_at",
                "energy_wh",
                "ev_min_a",
                "ev_max_a",
                "priority",
                "cable_max_a",
                "phases",
            )
            if getattr(new, name) is None
        },
    )


def delivered_wh(connector: ConnectorRecord) -> float:
    """The register's count since the need was said; 0 without both readings (or if the
    register went back, as after a charger reset)."""
    last = connector.measurement
    if connector.needs_register_wh is None or last is None or last.energy_wh is None:
        return 0.0
    return max(last.energy_wh - connector.needs_register_wh, 0.0)
