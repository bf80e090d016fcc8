"""The events of a scenario's timeline, as validated models (see docs/hil.md).

Each event has ``at_s`` and an ``event`` tag that selects its model, so an
error names the event and key: ``timeline[3].arrive.soc``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

NonNegative = Annotated[float, Field(ge=0)]
Soc = Annotated[float, Field(ge=0, le=1)]
Phases3 = tuple[float, float, float]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at_s: NonNegative


class Arrive(_Event):
    """EVs plug in: on ``charger``, or on each of ``chargers`` (``all``) ``stagger_s`` apart."""

    event: Literal["arrive"]
    charger: str | None = None
    chargers: Literal["all"] | list[str] | None = None
    connector: Annotated[int, Field(ge=1)] = 1
    ev: str | list[str]  # a model name, or names cycled over the chargers
    soc: Soc | None = None  # overrides the model's
    target_soc: Soc = 1.0  # what the driver wants by departure_s
    departure_s: NonNegative | None = None  # scenario time the EV leaves
    stagger_s: NonNegative = 0.0

    @model_validator(mode="after")
    def _which(self) -> Self:
        if (self.charger is None) == (self.chargers is None):
            raise ValueError("set exactly one of charger, chargers")
        return self


class Depart(_Event):
    """EVs unplug from ``charger`` or each of ``chargers``."""

    event: Literal["depart"]
    charger: str | None = None
    chargers: Literal["all"] | list[str] | None = None
    connector: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _which(self) -> Self:
        if (self.charger is None) == (self.chargers is None):
            raise ValueError("set exactly one of charger, chargers")
        return self


class BaseLoadChange(_Event):
    """The building switches loads: scale the profile, or hold ``current_a`` until the end."""

    event: Literal["base_load"]
    scale: Annotated[float, Field(ge=0, le=10)] | None = None
    current_a: Phases3 | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.scale is None) == (self.current_a is None):
            raise ValueError("set exactly one of scale, current_a")
        return self


class MeterFault(_Event):
    """The grid meter misbehaves from ``at_s`` on; ``mode: none`` ends it."""

    event: Literal["meter_fault"]
    mode: Literal["none", "silent", "exception", "nan", "frozen", "slow"]
    delay_s: Annotated[float, Field(gt=0, le=30)] = 2.0  # answer delay for ``slow``


class ChargerConnection(_Event):
    """A charger loses (``charger_offline``) or regains (``charger_online``) its websocket."""

    event: Literal["charger_offline", "charger_online"]
    charger: str
    reboot: bool = False  # online: the charger restarted (boots again) rather than a network blip


class LimitChange(_Event):
    """The facility manager changes the site limit (the running controller is reconfigured)."""

    event: Literal["limit"]
    max_current_a: Annotated[float, Field(gt=0)] | None = None
    max_power_kw: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> Self:
        if self.max_current_a is None and self.max_power_kw is None:
            raise ValueError("give max_current_a, max_power_kw or both")
        return self


class ControllerRestart(_Event):
    """The controller stops (every charger loses its connection) and starts again.

    The new controller resumes from the run's state store and the chargers
    reconnect, retrying as real chargers do; meanwhile each charger keeps its
    last setpoint until the lease ends, then falls back to its fail-safe.
    """

    event: Literal["controller_restart"]
    down_s: Annotated[float, Field(ge=0, le=600)] = 5.0


Event = Annotated[
    Arrive
    | Depart
    | BaseLoadChange
    | MeterFault
    | ChargerConnection
    | LimitChange
    | ControllerRestart,
    Field(discriminator="event"),
]
