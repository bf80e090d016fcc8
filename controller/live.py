"""What the API and dashboard show of a running site: the latest picture and a timeline.

:class:`LiveView` is fed by :class:`~controller.service.SiteController` with
every event, decision, command result and operator change. It keeps the
latest meter reading, charger and connector statuses, measured draw and the
last decision, plus a bounded timeline (``TIMELINE_MAX`` entries) of what
happened; older history is in the audit log. Frequent, repetitive inputs
(meter readings, MeterValues, decisions that change nothing) update the
picture but are not timeline entries.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.compliance import ScheduleCheck
from controller.decide import Decision
from controller.model import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    ChargerMeasurement,
    CommandResult,
    CompositeLimit,
    ConnectorStatusChanged,
    Event,
    MeterFailed,
    MeterReading,
    PhaseValues,
    ScheduleStatus,
    SessionNeeds,
    SessionStarted,
    SessionStopped,
)

TIMELINE_MAX = 2000


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One thing that happened: ``kind`` is the event's or record's type."""

    seq: int
    at: str
    kind: str
    summary: str
    charger_id: str | None = None
    connector_id: int | None = None


IDLE_STATUSES = frozenset({"Available", "Unavailable"})
"""Connector statuses (1.6 and 2.0.1) in which no car draws current."""


@dataclass
class ChargerLive:
    """A charger as last heard of."""

    connected: bool = False
    booted: bool = False
    model: str = ""
    status: dict[int, str] = field(default_factory=dict)
    draw_a: dict[int, PhaseValues] = field(default_factory=dict)
    power_w: dict[int, float | None] = field(default_factory=dict)
    energy_wh: dict[int, float | None] = field(default_factory=dict)


def _summary(event: Event) -> tuple[str, str | None, int | None] | None:
    """A line for the timeline, and the charger/connector it concerns; None: not an entry."""
    match event:
        case ChargerConnected(charger_id=cid, protocol=p):
            return f"connected ({p})", cid, None
        case ChargerBooted(charger_id=cid, vendor=v, model=m):
            return f"booted {v} {m}".rstrip(), cid, None
        case ChargerDisconnected(charger_id=cid, reason=r):
            return f"disconnected {r}".rstrip(), cid, None
        case ConnectorStatusChanged(charger_id=cid, connector_id=n, status=s, error_code=e):
            return f"status {s}" + ("" if e == "NoError" else f" ({e})"), cid, n or None
        case SessionStarted(charger_id=cid, connector_id=n, transaction_id=t, id_tag=tag):
            return f"session {t} started ({tag or 'no tag'})", cid, n
        case SessionStopped(charger_id=cid, transaction_id=t, reason=r):
            return f"session {t} stopped {r}".rstrip(), cid, None
        case SessionNeeds(charger_id=cid, connector_id=n, source=s):
            return f"session needs set by {s}", cid, n
        case MeterFailed(meter_id=m, detail=d):
            return f"meter {m} failed: {d}", None, None
        case _:
            return None


class LiveView:
    """The latest picture of one site and its recent timeline."""

    def __init__(self, site_id: str, timeline_max: int = TIMELINE_MAX) -> None:
        self.site_id = site_id
        self.timeline: deque[TimelineEntry] = deque(maxlen=timeline_max)
        self.chargers: dict[str, ChargerLive] = {}
        self.meter_a: PhaseValues = (None, None, None)
        self.meter_w: float | None = None
        self.meter_at: str | None = None
        self.decision: Decision | None = None
        self.decided_at: str | None = None
        self._seq = 0
        self._targets: dict[str, float] = {}

    def charger(self, charger_id: str) -> ChargerLive:
        return self.chargers.setdefault(charger_id, ChargerLive())

    def _add(
        self, at: datetime, kind: str, summary: str, cid: str | None, conn: int | None
    ) -> None:
        self._seq += 1
        self.timeline.append(TimelineEntry(self._seq, at.isoformat(), kind, summary, cid, conn))

    def on_event(self, event: Event, at: datetime) -> None:
        """Record an adapter's event."""
        self._picture(event, at)
        line = _summary(event)
        if line is not None:
            self._add(at, type(event).__name__, *line)

    def _picture(self, event: Event, at: datetime) -> None:
        match event:
            case MeterReading(current_a=a, power_w=w):
                self.meter_a, self.meter_w, self.meter_at = a, w, at.isoformat()
            case ChargerConnected(charger_id=cid):
                self.charger(cid).connected = True
            case ChargerBooted(charger_id=cid, model=m):
                self.charger(cid).booted, self.charger(cid).model = True, m
            case ChargerDisconnected(charger_id=cid):
                c = self.charger(cid)
                c.connected = c.booted = False
                c.draw_a.clear()  # what it draws now is unknown, not what it last reported
                c.power_w.clear()
            case ConnectorStatusChanged(charger_id=cid, connector_id=n, status=s):
                c = self.charger(cid)
                c.status[n] = s
                if s in IDLE_STATUSES:  # no car drawing: the last draw is history, not the present
                    c.draw_a.pop(n, None)
                    c.power_w.pop(n, None)
            case ChargerMeasurement(charger_id=cid, connector_id=n) as m:
                c = self.charger(cid)
                c.draw_a[n], c.power_w[n], c.energy_wh[n] = m.current_a, m.power_w, m.energy_wh

    def on_decision(self, decision: Decision, at: datetime) -> None:
        """Record a decision; the timeline gets the mode and the setpoints that changed."""
        previous = self.decision
        self.decision, self.decided_at = decision, at.isoformat()
        if previous is None or previous.mode != decision.mode:
            why = f": {decision.mode_reason}" if decision.mode_reason else ""
            self._add(at, "ModeChanged", f"mode {decision.mode.value}{why}", None, None)
        targets = {key: t.limit_a for key, t in decision.targets.items()}
        for key, target in decision.targets.items():
            if abs(self._targets.get(key, -1.0) - target.limit_a) >= 0.05:
                self._add(
                    at,
                    "Allocation",
                    f"{target.limit_a:.1f} A ({target.reason})",
                    target.charger_id,
                    target.connector_id,
                )
        self._targets = targets

    def on_command(self, result: CommandResult, at: datetime) -> None:
        """Record a command's outcome."""
        c = result.command
        self._add(
            at,
            "Command",
            f"{c.purpose.value} {c.limit_a:.1f} A → {result.status.value}"
            + (f" ({result.detail})" if result.detail else ""),
            c.charger_id,
            c.connector_id or None,
        )

    def on_schedule_check(
        self, check: ScheduleCheck, result: CompositeLimit, why: str | None, at: datetime
    ) -> None:
        """Record a composite-schedule check that did not simply agree (agreeing ones repeat)."""
        if why is None and result.status is ScheduleStatus.READ:
            return
        summary = why or f"composite schedule {result.status.value}: {result.detail}"
        self._add(at, "ScheduleCheck", summary, check.charger_id, check.connector_id)

    def on_change(self, who: str, resource: str, at: datetime) -> None:
        """Record an operator change."""
        self._add(at, "OperatorChange", f"{resource} changed by {who}", None, None)

    def entries(
        self,
        charger_id: str | None = None,
        connector_id: int | None = None,
        kinds: set[str] | None = None,
        after_seq: int = 0,
        limit: int = 200,
    ) -> list[TimelineEntry]:
        """The newest ``limit`` entries matching the filters, oldest first."""
        found = [
            e
            for e in self.timeline
            if e.seq > after_seq
            and (charger_id is None or e.charger_id == charger_id)
            and (connector_id is None or e.connector_id == connector_id)
            and (kinds is None or e.kind in kinds)
        ]
        return found[-limit:] if limit > 0 else []

    def as_dict(self) -> dict[str, Any]:
        """A small summary (for logs and tests)."""
        return {
            "site": self.site_id,
            "timeline": len(self.timeline),
            "chargers": len(self.chargers),
        }
