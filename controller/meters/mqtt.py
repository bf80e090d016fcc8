"""A site meter read from MQTT topics: listen, parse, judge freshness, emit an event.

:class:`MqttMeter` subscribes to the topics of a :class:`MqttMeterSettings`
(one topic for the whole meter, or one per quantity), keeps the latest value
of each topic, and emits into the sink, per message received:

- a :class:`MeterReading` when every quantity has a fresh value (``GOOD``, or
  ``INVALID`` naming a NaN or out-of-bounds value);
- a :class:`MeterFailed` when the payload cannot be parsed (saying which
  field and what was there), or a quantity has no fresh value;
- nothing while the first values arrive after connecting (for ``max_age_s``).

Silence for ``max_age_s`` and every failed connection attempt emit a
:class:`MeterFailed` too. A value never becomes 0 for lack of data. The broker
connection is retried with jittered backoff until the task is cancelled.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiomqtt
import structlog

from controller.clock import Clock
from controller.meters.backoff import jittered_backoff_s
from controller.meters.decode import DecodedValues, plausibility_problems
from controller.meters.health import HealthLog
from controller.meters.mqtt_settings import MqttMeterSettings, MqttValueSettings
from controller.meters.payload import PayloadError, field_value, number, parse_json
from controller.meters.payload import bare_number as parse_bare
from controller.meters.payload import timestamp as parse_timestamp
from controller.meters.registers import PHASE_QUANTITIES, UNIT_TO_SI, Quantity
from controller.model import EventSink, MeterFailed, MeterReading, Quality

__all__ = ["MqttMeter", "MqttMeterSettings", "MqttValueSettings", "reconnect_delay_s"]

_log = structlog.get_logger(__name__)

RECONNECT_MIN_S = 0.2
# A broker back from a restart is listened to again within ~5 s.
RECONNECT_MAX_S = 5.0
# Messages waiting to be parsed; past this aiomqtt drops new ones (and logs it),
# which only happens if parsing stalls: the next message replaces them anyway.
QUEUE_LIMIT = 1000

Event = MeterReading | MeterFailed


def reconnect_delay_s(failures: int, jitter: float) -> float:
    """Seconds before broker connection attempt ``failures`` + 1; ``jitter`` in [0, 1)."""
    return jittered_backoff_s(failures, jitter, RECONNECT_MIN_S, RECONNECT_MAX_S)


@dataclass
class _TopicValue:
    """The latest message of one topic, as values or as the reason it was refused."""

    received_at: float  # controller monotonic seconds
    source_age_s: float = 0.0  # how old its timestamp said it was when it arrived
    values: dict[Quantity, float] = field(default_factory=dict)
    error: str = ""
    source_at: float | None = None  # its timestamp (UNIX s), if the payload carries one


def parse_message(
    settings: MqttMeterSettings, topic: str, payload: bytes, now_wall_s: float
) -> tuple[dict[Quantity, float], float]:
    """The values (A and W, import positive) in one message, and its source age in s.

    ``now_wall_s`` is Unix time now, to age a payload's timestamp. Raises
    :class:`PayloadError` naming the field and what was wrong.
    """
    specs = settings.topics()[topic]
    if len(specs) == 1 and specs[0][1].field is None:
        quantity, spec = specs[0]
        return {quantity: _to_si(parse_bare(payload), spec)}, 0.0
    document = parse_json(payload)
    values = {
        q: _to_si(number(field_value(document, s.field or ""), f"field {s.field!r}"), s)
        for q, s in specs
    }
    return values, _source_age_s(settings, document, now_wall_s)


def _is_bare(settings: MqttMeterSettings, topic: str) -> bool:
    """True when the topic's payload is a bare number (it carries no timestamp)."""
    specs = settings.topics()[topic]
    return len(specs) == 1 and specs[0][1].field is None


def _to_si(raw: float, spec: MqttValueSettings) -> float:
    return raw * spec.scale * spec.sign * UNIT_TO_SI[spec.unit]


def _source_age_s(settings: MqttMeterSettings, document: object, now_wall_s: float) -> float:
    if settings.timestamp_field is None:
        return 0.0
    what = f"timestamp field {settings.timestamp_field!r}"
    stamp = parse_timestamp(field_value(document, settings.timestamp_field), what).timestamp()
    age_s = now_wall_s - stamp
    if age_s < -settings.max_age_s:  # a little skew is normal; seconds ahead is a wrong clock
        raise PayloadError(f"{what} is {-age_s:.1f} s in the future: the clocks disagree")
    return max(age_s, 0.0)


class MqttMeter:
    """Listens to one meter's MQTT topics and emits MeterReading / MeterFailed events."""

    def __init__(self, settings: MqttMeterSettings, sink: EventSink, clock: Clock) -> None:
        self.settings = settings
        self.meter_id = settings.id
        self._sink, self._clock = sink, clock
        self._topics = settings.topics()
        self._latest: dict[str, _TopicValue] = {}
        # Controller-clock time the subscriptions were made; None while disconnected.
        self.listening_since: float | None = None
        self.connected = False
        self._address = f"{settings.host}:{settings.port}"
        self._log = _log.bind(meter_id=self.meter_id, broker=self._address)
        self._health = HealthLog(self._log)

    # --- the pure-ish core: one message in, at most one event out -------------

    def on_message(self, topic: str, payload: bytes) -> Event | None:
        """Take one message; emit the resulting event (if any) into the sink and return it."""
        if topic not in self._topics:
            return None  # not a topic of this meter's settings: nothing to judge
        now = self._clock.monotonic()
        try:
            values, age_s = parse_message(
                self.settings, topic, payload, self._clock.now().timestamp()
            )
        except PayloadError as exc:
            self._latest[topic] = _TopicValue(now, error=str(exc))
            return self._emit(MeterFailed(self.meter_id, now, f"topic {topic}: {exc}"))
        stamp = None
        if self.settings.timestamp_field is not None and not _is_bare(self.settings, topic):
            stamp = self._clock.now().timestamp() - age_s
        self._latest[topic] = _TopicValue(now, age_s, values, source_at=stamp)
        return self._judge(now, on_message=True)

    def check_silence(self) -> Event | None:
        """After a quiet spell: emit a MeterFailed if some quantity has no fresh value."""
        return self._judge(self._clock.monotonic(), on_message=False)

    def _judge(self, now: float, *, on_message: bool) -> Event | None:
        problems, missing_only = self._freshness_problems(now)
        if not problems:
            return self._emit(self._reading(now)) if on_message else None
        since = self.listening_since
        if missing_only and since is not None and now - since < self.settings.max_age_s:
            return None  # the first values of each topic are still arriving
        return self._emit(MeterFailed(self.meter_id, now, "; ".join(problems)))

    def _freshness_problems(self, now: float) -> tuple[list[str], bool]:
        """Why the latest values cannot make a reading, and whether all are just missing."""
        missing: list[str] = []
        doubtful: list[str] = []
        for topic, specs in self._topics.items():
            what = f"{', '.join(q for q, _ in specs)} (topic {topic})"
            latest = self._latest.get(topic)
            if latest is None:
                missing.append(f"{what}: no value received yet")
                continue
            age_s = now - latest.received_at + latest.source_age_s
            if latest.error:
                doubtful.append(f"{what}: {latest.error}")
            elif age_s > self.settings.max_age_s:
                limit = f"max {self.settings.max_age_s:g} s"
                doubtful.append(f"{what}: value is {age_s:.1f} s old ({limit})")
        return missing + doubtful, not doubtful

    def _reading(self, now: float) -> MeterReading:
        merged: dict[Quantity, float] = {}
        for latest in self._latest.values():
            merged.update(latest.values)
        phases = tuple(merged.get(q) for q in PHASE_QUANTITIES)
        values = DecodedValues((phases[0], phases[1], phases[2]), merged.get("power_total"))
        problems = plausibility_problems(
            values, self.settings.max_current_a, self.settings.max_power_w
        )
        quality = Quality.INVALID if problems else Quality.GOOD
        stamps = [v.source_at for v in self._latest.values() if v.source_at is not None]
        return MeterReading(
            self.meter_id,
            now,
            values.current_a,
            values.power_w,
            quality,
            "; ".join(problems),
            min(stamps) if stamps else None,  # the reading is as old as its oldest part
        )

    def _emit(self, event: Event) -> Event:
        self._health.note(event)
        self._sink(event)
        return event

    # --- the broker connection ------------------------------------------------

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with jittered backoff; never raises otherwise."""
        failures = 0
        while True:
            try:
                await self._listen()
            except aiomqtt.MqttError as exc:
                failures = 1 if self.listening_since is not None else failures + 1
                self._lose_connection(exc)
            except Exception as exc:  # a bug must not end the meter's task; it is logged
                self._log.exception("mqtt meter crashed")
                failures += 1
                self._lose_connection(exc)
            await asyncio.sleep(reconnect_delay_s(failures, random.random()))

    async def _listen(self) -> None:
        s = self.settings
        client = aiomqtt.Client(
            s.host,
            s.port,
            identifier=s.client_id or f"headroom-{s.id}-{secrets.token_hex(4)}",
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            timeout=s.connect_timeout_s,
            keepalive=s.keepalive_s,
            max_queued_incoming_messages=QUEUE_LIMIT,
        )
        async with client:
            self.connected = True
            for topic in self._topics:
                await client.subscribe(topic, qos=0)
            self.listening_since = self._clock.monotonic()
            self._log.info("mqtt meter subscribed", topics=list(self._topics))
            await self._receive(aiter(client.messages))

    async def _receive(self, messages: AsyncIterator[aiomqtt.Message]) -> None:
        while True:
            try:
                async with asyncio.timeout(self.settings.max_age_s):
                    message = await anext(messages)
            except TimeoutError:
                self.check_silence()
                continue
            payload = message.payload
            raw = payload if isinstance(payload, bytes) else str(payload).encode()
            self.on_message(str(message.topic), raw)

    def _lose_connection(self, exc: BaseException) -> None:
        if self.connected:
            cause = exc.__cause__ or exc
            detail = f"connection to broker {self._address} lost: {cause}"
        else:
            detail = f"cannot connect to broker {self._address}: {exc}"
        self.connected = False
        self.listening_since = None
        self._emit(MeterFailed(self.meter_id, self._clock.monotonic(), detail))
