"""The charger quirks seen in the field, as data a simulated charge point plays out (pure).

Each flag is a behaviour real chargers show (see the domain notes): A-only
(Bender controllers) or W-only stations, TxProfiles refused, profiles
accepted and ignored (some go-e firmware), profiles stacked wrongly, profiles
lost after a reboot, slow answers, chargers silent to commands while they keep
heartbeating, and chargers that cannot report their composite schedule.
A scenario file names them as a mapping, ``Quirks(**mapping)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Quirks:
    """How a simulated charger departs from OCPP 1.6; the default is a compliant charger."""

    a_only: bool = False
    """Rejects profiles in W (``chargingRateUnit`` ``W``); reports only ``Current``."""
    w_only: bool = False
    """Rejects profiles in A; reports only ``Power``."""
    rejects_tx_profile: bool = False
    """Rejects every TxProfile, even in a transaction."""
    ignores_profiles: bool = False
    """Answers Accepted to every SetChargingProfile and applies none."""
    drops_profiles_on_reboot: bool = False
    """Forgets every installed profile when it reboots (OCPP wants them kept)."""
    slow_ack_s: float = 0.0
    """Answers each command from the central system this many seconds late."""
    silent_to_commands: bool = False
    """Never answers a command; its own messages (heartbeats, meter values) go on."""
    stacks_wrongly: bool = False
    """Applies the lower of its TxProfile and TxDefaultProfile (OCPP lets the TxProfile
    overrule the default), and reports that in its composite schedule."""
    no_composite_schedule: bool = False
    """Answers every GetCompositeSchedule with Rejected."""

    def __post_init__(self) -> None:
        """Refuse contradictory or impossible quirks."""
        if self.a_only and self.w_only:
            raise ValueError("a charger cannot be both A-only and W-only")
        if not math.isfinite(self.slow_ack_s) or self.slow_ack_s < 0:
            raise ValueError(f"slow_ack_s must be a finite number >= 0, got {self.slow_ack_s!r}")

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> Quirks:
        """Quirks from a scenario mapping; an unknown name is an error listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ValueError(f"unknown quirks {unknown}; known: {sorted(known)}")
        return cls(**mapping)

    @property
    def rate_units(self) -> str:
        """``ChargingScheduleAllowedChargingRateUnit`` as this charger reports it."""
        if self.a_only:
            return "Current"
        if self.w_only:
            return "Power"
        return "Current,Power"

    def refusal(self, profile: dict[str, Any]) -> str | None:
        """The status a quirk answers ``profile`` with, or ``None`` to follow the spec."""
        unit = profile["chargingSchedule"]["chargingRateUnit"]
        if (self.a_only and unit == "W") or (self.w_only and unit == "A"):
            return "Rejected"
        if self.rejects_tx_profile and profile["chargingProfilePurpose"] == "TxProfile":
            return "Rejected"
        return None
