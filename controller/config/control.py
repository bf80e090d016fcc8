"""How the loop decides and commands (``control:``): its pace, the settling of cars
after a change, the meter's trust and the policy."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from controller.config.base import Strict


class ControlSettings(Strict):
    """How the loop decides and commands."""

    policy: str = "weighted_fair"
    interval_s: Annotated[float, Field(ge=0.1, le=60)] = 1.0
    lease_s: Annotated[float, Field(ge=2, le=3600)] = 120.0
    deadband_a: Annotated[float, Field(ge=0, le=10)] = 0.5
    min_increase_interval_s: Annotated[float, Field(ge=0, le=600)] = 5.0
    response_time_s: Annotated[float, Field(ge=1, le=600)] = 5.0
    response_time_max_s: Annotated[float, Field(ge=1, le=600)] = 60.0
    increases_wait_for: Literal["acknowledged", "followed"] = "acknowledged"
    ramp_step_a: Annotated[float, Field(ge=1, le=1000)] | None = 32.0
    base_load_window_s: Annotated[float, Field(ge=0, le=60)] = 3.0
    meter_stale_s: Annotated[float, Field(ge=0.5, le=600)] = 3.0
    failsafe_after_s: Annotated[float, Field(ge=0, le=3600)] = 30.0
    ev_probe_a: Annotated[float, Field(ge=0.5, le=16)] = 2.0
    ev_settle_s: Annotated[float, Field(ge=1, le=600)] = 10.0
    compliance_timeout_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    min_run_s: Annotated[float, Field(ge=0, le=86400)] = 300.0
    min_pause_s: Annotated[float, Field(ge=0, le=86400)] = 300.0
    meter_max_step_a: Annotated[float, Field(gt=0)] | None = None
    meter_frozen_s: Annotated[float, Field(ge=1, le=3600)] = 60.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        from policies import POLICIES

        if self.policy not in POLICIES:
            known = ", ".join(sorted(POLICIES))
            raise ValueError(f"control.policy {self.policy!r} is unknown; known: {known}")
        if self.response_time_s > self.response_time_max_s:
            raise ValueError("response_time_s must not exceed response_time_max_s")
        if self.ramp_step_a is not None and self.ramp_step_a <= self.deadband_a:
            raise ValueError("ramp_step_a must exceed deadband_a (a smaller step is never sent)")
        return self
