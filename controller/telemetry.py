"""MQTT telemetry: the site's state every decision, and its events, for dashboards and alerts.

Topics, under ``{prefix}/{site}``:

* ``status`` — ``online`` / ``offline`` (retained; ``offline`` is the broker's
  last will, so a dead controller shows as offline).
* ``state`` — JSON, each decision (retained: a dashboard gets the last value at
  once): mode and why, grid meter current and power, limits, base load, and per
  session its setpoint, the constraint that binds it and its measured draw.
* ``chargers/{id}/status`` — JSON, retained: connected or not, each connector's
  OCPP status and error code (vendor codes kept as the charger sent them).
* ``events`` — JSON, not retained: sessions, connections, status changes,
  meter faults, each with its time.

Publishing never blocks the loop: the state is a single slot (the newest
replaces one not yet sent) and events go through a bounded queue (the oldest
is dropped, and counted, when the broker is away for long). The publisher
reconnects with jittered backoff.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiomqtt
import structlog

from controller.config import TelemetrySettings
from controller.decide import Decision
from controller.model import (
    ChargerBooted,
    ChargerConnected,
    ChargerDisconnected,
    ConnectorStatusChanged,
    Event,
    MeterFailed,
    MeterReading,
    Quality,
    SessionStarted,
    SessionStopped,
)
from controller.snapshot import SiteSnapshot

log = structlog.get_logger(__name__)

EVENT_QUEUE = 1000
BACKOFF_MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message to publish."""

    topic: str
    payload: str
    retain: bool


def _rounded(values: Any) -> Any:
    if isinstance(values, tuple | list):
        return [None if v is None else round(v, 2) for v in values]
    return None if values is None else round(values, 2)


class TelemetryPublisher:
    """Publishes one site's telemetry to an MQTT broker."""

    def __init__(self, settings: TelemetrySettings, site_id: str) -> None:
        self.settings = settings
        self.base = f"{settings.prefix}/{site_id}"
        self._state: Message | None = None
        self._events: deque[Message] = deque(maxlen=EVENT_QUEUE)
        self._chargers: dict[str, dict[str, Any]] = {}
        self._meter_problems: dict[str, str | None] = {}  # by meter id: one site, many meters
        self._ready = asyncio.Event()
        self.dropped = 0
        self.published = 0

    # --- what to publish (called from the loop; never blocks) --------------

    def publish_state(self, decision: Decision, snapshot: SiteSnapshot, at: datetime) -> None:
        """The site's state after a decision (replaces one not yet sent)."""
        sessions = {
            s.key: {
                "limit_a": decision.targets[s.key].limit_a if s.key in decision.targets else None,
                "reason": decision.targets[s.key].reason if s.key in decision.targets else None,
                "measured_a": _rounded(s.measured_a),
                "status": s.status,
            }
            for s in snapshot.sessions
        }
        meter = snapshot.meter
        body = {
            "at": at.isoformat(),
            "mode": decision.mode.value,
            "mode_reason": decision.mode_reason,
            "grid_current_a": _rounded(meter.current_a),
            "grid_power_w": _rounded(meter.power_w),
            "meter_problem": meter.problem or None,
            "base_load_a": _rounded(decision.base_load_a),
            "sessions": sessions,
        }
        self._state = Message(f"{self.base}/state", json.dumps(body), retain=True)
        self._ready.set()

    def publish_event(self, event: Event, at: datetime) -> None:
        """An event worth telling (sessions, connections, statuses, meter faults)."""
        body = (
            self._meter_change(event)
            if isinstance(event, MeterReading | MeterFailed)
            else (_event_body(event))
        )
        if body is None:
            return
        body["at"] = at.isoformat()
        self._queue(Message(f"{self.base}/events", json.dumps(body), retain=False))
        charger_id = getattr(event, "charger_id", None)
        if charger_id is not None and self._update_charger(event):
            self._queue(
                Message(
                    f"{self.base}/chargers/{charger_id}/status",
                    json.dumps(self._chargers[charger_id]),
                    retain=True,
                )
            )

    def _meter_change(self, event: MeterReading | MeterFailed) -> dict[str, Any] | None:
        """Meter faults as changes (fault, recovery), not one event per failed poll."""
        good = isinstance(event, MeterReading) and event.quality is Quality.GOOD
        problem = None if good else (event.detail or "invalid reading")
        before = self._meter_problems.get(event.meter_id)
        if problem == before or (problem and before):
            return None
        self._meter_problems[event.meter_id] = problem
        if problem is None:
            return {"type": "meter_recovered", "meter": event.meter_id}
        return {"type": "meter_fault", "meter": event.meter_id, "detail": problem}

    def _update_charger(self, event: Event) -> bool:
        charger_id = getattr(event, "charger_id", "")
        entry = self._chargers.setdefault(charger_id, {"connected": False, "connectors": {}})
        match event:
            case ChargerConnected() | ChargerBooted():
                entry["connected"] = True
            case ChargerDisconnected():
                entry["connected"] = False
            case ConnectorStatusChanged():
                entry["connectors"][str(event.connector_id)] = {
                    "status": event.status,
                    "error_code": event.error_code,
                    "vendor_error_code": event.vendor_error_code or None,
                    "info": event.info or None,
                }
            case _:
                return False
        return True

    def _queue(self, message: Message) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(message)
        self._ready.set()

    # --- the connection -------------------------------------------------------

    async def run(self) -> None:
        """Connect, publish whatever is pending, reconnect after a loss; until cancelled."""
        failures = 0
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as exc:
                failures += 1
                delay_s = min(BACKOFF_MAX_S, 0.25 * 2**failures) * random.uniform(0.5, 1.0)
                log.warning("telemetry broker unreachable", error=str(exc), retry_in_s=delay_s)
                await asyncio.sleep(delay_s)
            else:
                failures = 0

    async def _session(self) -> None:
        s = self.settings
        will = aiomqtt.Will(f"{self.base}/status", "offline", qos=1, retain=True)
        async with aiomqtt.Client(
            s.host,
            s.port,
            identifier=s.client_id,
            username=s.username,
            password=s.password,
            will=will,
            timeout=5,
        ) as client:
            await client.publish(f"{self.base}/status", "online", qos=1, retain=True)
            log.info("telemetry connected", broker=f"{s.host}:{s.port}", prefix=self.base)
            while True:
                await self._ready.wait()
                self._ready.clear()
                while self._events:
                    message = self._events[0]
                    await client.publish(
                        message.topic, message.payload, qos=0, retain=message.retain
                    )
                    self._events.popleft()  # only once the broker has it
                    self.published += 1
                state, self._state = self._state, None
                if state is not None:
                    await client.publish(state.topic, state.payload, qos=0, retain=True)
                    self.published += 1


def _event_body(event: Event) -> dict[str, Any] | None:
    match event:
        case SessionStarted():
            return {
                "type": "session_started",
                "charger": event.charger_id,
                "connector": event.connector_id,
                "transaction_id": event.transaction_id,
            }
        case SessionStopped():
            return {
                "type": "session_stopped",
                "charger": event.charger_id,
                "transaction_id": event.transaction_id,
                "reason": event.reason,
            }
        case ChargerConnected():
            return {"type": "charger_connected", "charger": event.charger_id}
        case ChargerDisconnected():
            return {
                "type": "charger_disconnected",
                "charger": event.charger_id,
                "reason": event.reason,
            }
        case ConnectorStatusChanged():
            return {
                "type": "status",
                "charger": event.charger_id,
                "connector": event.connector_id,
                "status": event.status,
                "error_code": event.error_code,
                "vendor_error_code": event.vendor_error_code or None,
            }
    return None
