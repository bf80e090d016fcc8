"""How the ``deadline`` policy plans (``deadline:``): slots, horizon, time-of-use
prices, a peak cap and the building's expected base load by hour."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from controller.config.base import Strict

_CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class PriceWindow(Strict):
    """An energy price from ``from`` to ``to`` (local ``HH:MM``; may wrap past midnight)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: Annotated[str, Field(alias="from", pattern=_CLOCK_TIME)]
    end: Annotated[str, Field(alias="to", pattern=_CLOCK_TIME)]
    price: float


_Amps = Annotated[float, Field(ge=0, allow_inf_nan=False)]

HOURS_PER_DAY = 24


class DeadlineSettings(Strict):
    """How the ``deadline`` policy plans: slots, horizon, time-of-use prices, peak cap,
    and the building's base load expected in each local hour of the day."""

    slot_min: Annotated[float, Field(gt=0, le=60)] = 15.0
    horizon_h: Annotated[float, Field(gt=0, le=168)] = 24.0
    prices: list[PriceWindow] = Field(default_factory=list)
    peak_cap_kw: Annotated[float, Field(gt=0)] | None = None
    timezone: str = "UTC"
    base_load_profile: list[tuple[_Amps, _Amps, _Amps]] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone {self.timezone!r} is unknown") from exc
        if self.horizon_h * 60 / self.slot_min > 2000:
            raise ValueError("horizon_h / slot_min: more than 2,000 slots is too many to plan")
        profile = self.base_load_profile
        if profile is not None and len(profile) != HOURS_PER_DAY:
            raise ValueError(
                f"base_load_profile: expected {HOURS_PER_DAY} entries [L1, L2, L3] (A), one per "
                f"local hour from 00:00, got {len(profile)}"
            )
        return self
