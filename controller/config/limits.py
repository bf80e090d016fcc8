"""The limits of the site's grid connection (``site:``) and of the groups under it
(``groups:``: feeders, panels)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from controller.config.base import IEC_61851_MIN_CURRENT_A, Strict


class SiteLimits(Strict):
    """The grid connection: its limits and the electrical basics."""

    id: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    voltage_v: Annotated[float, Field(gt=0, le=1000)] = 230.0
    phases: Literal[1, 3] = 3
    max_power_kw: Annotated[float, Field(gt=0)] | None = None
    max_current_a: Annotated[float, Field(gt=0)] | None = None
    safety_margin_a: Annotated[float, Field(ge=0)] = 0.0
    failsafe_current_a: Annotated[float, Field(ge=0)] = 0.0
    base_load_reserve_a: Annotated[float, Field(ge=0)] = 0.0
    building_peak_a: (
        Annotated[float, Field(ge=0)]
        | tuple[
            Annotated[float, Field(ge=0)],
            Annotated[float, Field(ge=0)],
            Annotated[float, Field(ge=0)],
        ]
        | None
    ) = None
    """The most the building's own load may reach, A per site phase (one number: every
    phase). The plan never counts the base load below it, so a step of the building up
    to its peak finds the room free instead of waiting for the cars to follow a cut."""
    demand_target_kw: Annotated[float, Field(gt=0)] | None = None
    demand_window_min: Literal[15, 30, 60] = 15

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.max_power_kw is None and self.max_current_a is None:
            raise ValueError(
                "no limit: set site.max_power_kw and/or site.max_current_a "
                "(the site must have a maximum demand)"
            )
        if 0 < self.failsafe_current_a < IEC_61851_MIN_CURRENT_A:
            raise ValueError(
                f"site.failsafe_current_a is {self.failsafe_current_a} A: use 0 or at least "
                f"{IEC_61851_MIN_CURRENT_A} A (below it the EV stops, IEC 61851)"
            )
        if self.max_current_a is not None and self.safety_margin_a >= self.max_current_a:
            raise ValueError("site.safety_margin_a must be below site.max_current_a")
        room_a = None if self.max_current_a is None else self.max_current_a - self.safety_margin_a
        if room_a is not None and max(self.building_peak) >= room_a:
            raise ValueError(
                f"site.building_peak_a {max(self.building_peak)} A leaves no room for charging "
                f"under max_current_a − safety_margin_a ({room_a} A)"
            )
        return self

    @property
    def building_peak(self) -> tuple[float, float, float]:
        """``building_peak_a`` per site phase (0 where none is set)."""
        peak = self.building_peak_a
        if peak is None:
            return (0.0, 0.0, 0.0)
        if isinstance(peak, tuple):
            return peak
        return (peak, peak, peak)

    @property
    def max_power_w(self) -> float | None:
        """The power limit in W, if any."""
        return None if self.max_power_kw is None else self.max_power_kw * 1000.0


class GroupSettings(Strict):
    """A node of the limit tree between the site and its chargers: a feeder, a panel.

    A group without a meter of its own is taken to carry only its chargers (no
    other load); its limits hold on every phase like the site's.
    """

    id: Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_.\-]+$")]
    parent: str | None = None
    max_current_a: Annotated[float, Field(gt=0)] | None = None
    max_power_kw: Annotated[float, Field(gt=0)] | None = None
    safety_margin_a: Annotated[float, Field(ge=0)] = 0.0
