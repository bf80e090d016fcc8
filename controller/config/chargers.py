"""One charger's settings (``chargers:``): its rating, wiring, priority and password."""

from __future__ import annotations

import functools
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from controller.config.base import IEC_61851_MIN_CURRENT_A, Strict


class ChargerSettings(Strict):
    """One charger: its rating, wiring and priority."""

    id: Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_.\-]+$")]
    max_current_a: Annotated[float, Field(ge=IEC_61851_MIN_CURRENT_A, le=1000)] = 32.0
    phases: Literal[1, 3] = 3
    connectors: Annotated[int, Field(ge=1, le=8)] = 1
    priority: Annotated[float, Field(gt=0, le=100)] = 1.0
    phase_rotation: Literal["L1L2L3", "L2L3L1", "L3L1L2", "L1L3L2", "L3L2L1", "L2L1L3"] = "L1L2L3"
    password_hash: Annotated[str, Field(min_length=1)] | None = None
    group: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        from controller.ocpp.auth import check_password_hash

        if self.password_hash is not None:
            try:
                check_password_hash(self.password_hash)
            except ValueError as exc:
                raise ValueError(
                    f"password_hash: {exc} (make one with `headroom hash-password`)"
                ) from exc
        return self

    def site_phases(self) -> tuple[int, ...]:
        """The site phases (0=L1) that this charger's L1, L2, L3 are wired to."""
        return _wiring(self.phase_rotation, self.phases)


@functools.cache
def _wiring(phase_rotation: str, phases: int) -> tuple[int, ...]:
    """The site phases of a charger's phases, from its rotation (once per rotation: the
    loop asks per session per decision)."""
    wired = tuple(int(phase_rotation[i + 1]) - 1 for i in range(0, 6, 2))
    return wired[:phases]
