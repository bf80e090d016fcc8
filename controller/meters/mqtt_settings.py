"""Settings of an MQTT meter: broker, topics, payload fields, units and sign.

Kept apart from :mod:`controller.meters.mqtt` so the config can validate them
without importing the MQTT client; ``controller.meters.mqtt`` re-exports them.

Example (one JSON topic for the whole meter, power in kW counted export
positive, a source timestamp)::

    id: grid
    host: 192.0.2.10
    topic: site/meter
    timestamp_field: ts
    quantities:
      current_l1: {field: current.0, unit: A}
      current_l2: {field: current.1, unit: A}
      current_l3: {field: current.2, unit: A}
      power_total: {field: data.power.total, unit: kW, sign: -1}

or one topic per quantity, each payload a bare number::

    quantities:
      current_l1: {topic: site/meter/l1, unit: mA}
      power_total: {topic: site/meter/power, unit: W}
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from controller.meters.registers import Quantity, Unit, unit_problem

_Topic = Annotated[str, Field(min_length=1, max_length=1024)]


class MqttValueSettings(BaseModel):
    """Where one quantity is published and how it is encoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: _Topic | None = Field(
        default=None, description="topic of this quantity; default: the meter's topic"
    )
    field: str | None = Field(
        default=None,
        min_length=1,
        description="dotted path in a JSON payload (list items by index); none: a bare number",
    )
    unit: Unit
    scale: float = Field(default=1.0, description="multiplier from the payload to `unit`")
    sign: Literal[1, -1] = Field(default=1, description="-1 when the source counts export positive")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"scale must be a finite non-zero number, not {self.scale}")
        return self


class MqttMeterSettings(BaseModel):
    """One meter read from an MQTT broker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1)] = "grid"
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: SecretStr | None = None
    client_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    topic: _Topic | None = None
    # Dotted path of a source timestamp in JSON payloads (Unix s or ms, or ISO 8601
    # with an offset); bare-number payloads carry none and are aged by arrival.
    timestamp_field: Annotated[str, Field(min_length=1)] | None = None
    # A value older than this (by arrival, or by its own timestamp) is not used.
    max_age_s: Annotated[float, Field(ge=0.25, le=3600)] = 5.0
    keepalive_s: Annotated[int, Field(ge=1, le=3600)] = 15
    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = 3.0
    max_current_a: Annotated[float, Field(gt=0)] = 10_000.0
    max_power_w: Annotated[float, Field(gt=0)] = 10_000_000.0
    quantities: dict[Quantity, MqttValueSettings] = Field(min_length=1)

    def topics(self) -> dict[str, list[tuple[Quantity, MqttValueSettings]]]:
        """Each subscribed topic with the quantities its payload carries."""
        by_topic: dict[str, list[tuple[Quantity, MqttValueSettings]]] = {}
        for quantity, spec in self.quantities.items():
            topic = spec.topic or self.topic
            assert topic is not None  # the validator made sure
            by_topic.setdefault(topic, []).append((quantity, spec))
        return by_topic

    @model_validator(mode="after")
    def _check(self) -> Self:
        for quantity, spec in self.quantities.items():
            if problem := unit_problem(quantity, spec.unit):
                raise ValueError(problem)
            topic = spec.topic or self.topic
            if topic is None:
                raise ValueError(f"{quantity}: no topic (set `topic` here or on the meter)")
            if "+" in topic or "#" in topic:
                raise ValueError(f"{quantity}: topic {topic!r} has a wildcard; name one topic")
        for topic, specs in self.topics().items():
            bare = [q for q, s in specs if s.field is None]
            if bare and len(specs) > 1:
                raise ValueError(
                    f"topic {topic!r} carries {len(specs)} quantities, so each needs a JSON"
                    f" `field`; {', '.join(bare)} has none"
                )
        return self
