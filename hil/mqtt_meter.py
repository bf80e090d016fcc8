"""A simulated MQTT site meter: publishes what ``source()`` says, as the settings describe.

The payloads follow the same :class:`MqttMeterSettings` the controller's
:class:`~controller.meters.mqtt.MqttMeter` reads (topics, JSON field paths or
bare numbers, unit, scale, sign, timestamp field), so the two agree by
construction. Faults can be switched on and off while it runs:

- ``fault = "silent"``: publish nothing;
- ``fault = "frozen"``: keep publishing the values of the moment the fault began;
- ``fault = "nan"``: publish NaN for every value;
- ``fault = "garbage"``: publish payloads that are not numbers or not JSON;
- ``timestamp_lag_s``: stamp payloads that many seconds in the past.

:meth:`run` reconnects by itself, so it rides through a broker restart.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from typing import Any, Literal

import aiomqtt

from controller.clock import Clock, SystemClock
from controller.meters.mqtt import MqttMeterSettings, MqttValueSettings
from controller.meters.registers import UNIT_TO_SI, Quantity
from hil.meter import MeterValues

MqttFault = Literal["silent", "frozen", "nan", "garbage"]

RECONNECT_S = 0.05  # a simulator retries at once: tests wait on it


def _raw(spec: MqttValueSettings, value_si: float) -> float:
    """The number a source following ``spec`` publishes for ``value_si`` (A or W)."""
    return value_si / (spec.scale * spec.sign * UNIT_TO_SI[spec.unit])


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at a dotted ``path`` in nested objects, creating them on the way."""
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def _values(values: MeterValues) -> dict[Quantity, float]:
    l1, l2, l3 = values.current_a
    return {"current_l1": l1, "current_l2": l2, "current_l3": l3, "power_total": values.power_w}


class SimulatedMqttMeter:
    """Publishes a meter's values to an MQTT broker every ``interval_s``."""

    def __init__(
        self,
        source: Callable[[], MeterValues],
        settings: MqttMeterSettings,
        interval_s: float = 0.1,
        retain: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self._source = source
        self.settings = settings
        self.interval_s = interval_s
        self.retain = retain
        self.fault: MqttFault | None = None
        self.timestamp_lag_s = 0.0
        self.published = 0  # messages handed to the broker
        self.connected = False
        self._last: MeterValues | None = None
        self._clock: Clock = clock or SystemClock()  # source timestamps: scenario time

    def payloads(self) -> dict[str, bytes]:
        """What each topic gets now, faults included (pure but for ``source()``)."""
        if self.fault != "frozen" or self._last is None:
            self._last = self._source()
        values = _values(self._last)
        if self.fault == "nan":
            values = dict.fromkeys(values, float("nan"))
        return {
            topic: self._payload(specs, values) for topic, specs in self.settings.topics().items()
        }

    def _payload(
        self, specs: list[tuple[Quantity, MqttValueSettings]], values: dict[Quantity, float]
    ) -> bytes:
        if len(specs) == 1 and specs[0][1].field is None:
            quantity, spec = specs[0]
            text = "garbage" if self.fault == "garbage" else repr(_raw(spec, values[quantity]))
            return text.encode()
        if self.fault == "garbage":
            return b"{not json"
        document: dict[str, Any] = {}
        for quantity, spec in specs:
            _put(document, spec.field or quantity, _raw(spec, values[quantity]))
        if self.settings.timestamp_field is not None:
            _put(
                document,
                self.settings.timestamp_field,
                self._clock.now().timestamp() - self.timestamp_lag_s,
            )
        return json.dumps(document).encode()  # NaN goes out as the JSON extension NaN

    async def publish_once(self, client: aiomqtt.Client) -> None:
        """Publish one round of payloads (nothing while silent)."""
        if self.fault == "silent":
            return
        for topic, payload in self.payloads().items():
            await client.publish(topic, payload, qos=0, retain=self.retain)
            self.published += 1

    async def run(self) -> None:
        """Publish every ``interval_s`` until cancelled, reconnecting after a lost broker."""
        identifier = f"sim-meter-{self.settings.id}-{secrets.token_hex(4)}"
        while True:
            try:
                async with aiomqtt.Client(
                    self.settings.host, self.settings.port, identifier=identifier, timeout=2
                ) as client:
                    self.connected = True
                    while True:
                        await self.publish_once(client)
                        task = asyncio.current_task()
                        if task is not None and task.cancelling():
                            # aiomqtt's wait_for (Python 3.11) can drop a cancellation that
                            # races a publish's answer: honour it, or a stop waits for ever
                            raise asyncio.CancelledError
                        await asyncio.sleep(self.interval_s)
            except aiomqtt.MqttError:
                self.connected = False
                await asyncio.sleep(RECONNECT_S)
