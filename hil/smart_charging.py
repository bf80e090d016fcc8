"""The OCPP 1.6 composite-schedule rule a simulated charger applies (pure).

Profiles are camelCase dicts as they arrive on the wire. The rule, per
OCPP 1.6 §3.13: within a purpose the valid profile with the highest
``stackLevel`` wins; a valid ``TxProfile`` overrules the ``TxDefaultProfile``;
``ChargePointMaxProfile`` caps the charger as a whole; with no valid profile
the charger offers its rating. A TxDefaultProfile on the connector itself
wins over one on connector 0 at the same stack level. GetCompositeSchedule
is answered from the same rule (:func:`composite_periods`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

_RECURRENCE_S = {"Daily": 86_400.0, "Weekly": 604_800.0}


@dataclass(frozen=True, slots=True)
class StoredProfile:
    """A profile as the charger holds it: the connector it was set on and its wire dict."""

    connector_id: int
    profile: dict[str, Any]

    @property
    def purpose(self) -> str:
        """``ChargePointMaxProfile``, ``TxDefaultProfile`` or ``TxProfile``."""
        return str(self.profile["chargingProfilePurpose"])

    @property
    def stack_level(self) -> int:
        """Higher stack levels win within a purpose."""
        return int(self.profile["stackLevel"])


class ProfileStore:
    """The profiles a charger holds, by (connector, purpose, stack level), with the 1.6 rules."""

    def __init__(self, n_connectors: int) -> None:
        self.n_connectors = n_connectors
        self._held: dict[tuple[int, str, int], StoredProfile] = {}

    def install(self, connector_id: int, profile: dict[str, Any], running_tx: int | None) -> str:
        """SetChargingProfile: ``Accepted`` and stored, or ``Rejected`` where the spec forbids it.

        ``running_tx`` is the transaction running on the connector, if any. The
        same purpose and stack level, or the same chargingProfileId, replaces.
        """
        purpose = str(profile["chargingProfilePurpose"])
        if not self._allowed(connector_id, purpose, profile.get("transactionId"), running_tx):
            return "Rejected"
        for key in [k for k, p in self._held.items() if _same_id(p.profile, profile)]:
            del self._held[key]
        key = (connector_id, purpose, int(profile["stackLevel"]))
        self._held[key] = StoredProfile(connector_id, profile)
        return "Accepted"

    def clear(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
    ) -> str:
        """ClearChargingProfile: by id, else by the criteria given; ``Unknown`` if none matched."""
        matched = [
            key
            for key, stored in self._held.items()
            if (stored.profile["chargingProfileId"] == id)
            or (
                id is None
                and connector_id in (None, key[0])
                and charging_profile_purpose in (None, key[1])
                and stack_level in (None, key[2])
            )
        ]
        for key in matched:
            del self._held[key]
        return "Accepted" if matched else "Unknown"

    def end_transaction(self, connector_id: int) -> None:
        """Drop the connector's TxProfiles: they live only as long as their transaction."""
        for key in [k for k in self._held if k[0] == connector_id and k[1] == "TxProfile"]:
            del self._held[key]

    def all(self) -> list[StoredProfile]:
        """Every profile held, on any connector."""
        return list(self._held.values())

    def held(self, purpose: str, *connector_ids: int) -> list[StoredProfile]:
        """The stored profiles of one purpose on the given connectors."""
        return [p for k, p in self._held.items() if k[1] == purpose and k[0] in connector_ids]

    def _allowed(
        self, connector_id: int, purpose: str, transaction_id: int | None, running_tx: int | None
    ) -> bool:
        """Which connector takes which purpose (OCPP 1.6 §3.13.2)."""
        if not 0 <= connector_id <= self.n_connectors:
            return False
        if purpose == "ChargePointMaxProfile":
            return connector_id == 0
        if purpose == "TxProfile":
            # A TxProfile needs a running transaction on its connector, and the right one.
            in_tx = running_tx is not None and transaction_id in (None, running_tx)
            return connector_id > 0 and in_tx
        return True


def profile_limit_a(
    profile: dict[str, Any], at: datetime, session_start: datetime | None, voltage_v: float
) -> float | None:
    """The limit in A per phase the profile sets at ``at``, or ``None`` if not in force."""
    if not _within(profile.get("validFrom"), profile.get("validTo"), at):
        return None
    schedule: dict[str, Any] = profile["chargingSchedule"]
    start = _schedule_start(profile, schedule, at, session_start)
    if start is None:
        return None
    elapsed_s = (at - start).total_seconds()
    duration_s = schedule.get("duration")
    if elapsed_s < 0 or (duration_s is not None and elapsed_s >= float(duration_s)):
        return None
    periods = [p for p in schedule["chargingSchedulePeriod"] if p["startPeriod"] <= elapsed_s]
    if not periods:
        return None
    period = max(periods, key=lambda p: p["startPeriod"])
    limit = float(period["limit"])
    if schedule["chargingRateUnit"] == "W":  # total power → current per phase
        return limit / (voltage_v * int(period.get("numberPhases", 3)))
    return limit


def best_limit_a(
    profiles: Iterable[StoredProfile],
    connector_id: int,
    at: datetime,
    session_start: datetime | None,
    voltage_v: float,
) -> float | None:
    """The limit of the highest-stack profile in force; on a tie the connector's own wins."""
    ranked = [
        ((p.stack_level, p.connector_id == connector_id), limit)
        for p in profiles
        if (limit := profile_limit_a(p.profile, at, session_start, voltage_v)) is not None
    ]
    return max(ranked, key=lambda item: item[0])[1] if ranked else None


def composite_periods(
    limit_at: Callable[[datetime], float],
    profiles: Iterable[StoredProfile],
    start: datetime,
    duration_s: int,
) -> list[tuple[int, float]]:
    """A composite schedule as ``(startPeriod, limit)`` pairs from ``start`` for ``duration_s``.

    ``limit_at`` is the charger's own rule (the limit it applies at an instant);
    it is read at ``start`` and wherever a held profile begins, changes period or
    ends within the duration (a lease running out shows as the fall to the
    default). Consecutive equal limits merge into one period.
    """
    offsets = {0}
    for stored in profiles:
        for instant in _boundaries(stored.profile):
            offset = math.ceil((instant - start).total_seconds())
            if 0 < offset < duration_s:
                offsets.add(offset)
    periods: list[tuple[int, float]] = []
    for offset in sorted(offsets):
        limit = limit_at(start + timedelta(seconds=offset))
        if not periods or abs(periods[-1][1] - limit) > 1e-9:
            periods.append((offset, limit))
    return periods


def _boundaries(profile: dict[str, Any]) -> list[datetime]:
    """Where an Absolute profile's limit may change: validity, period starts, the end."""
    validity = [profile[k] for k in ("validFrom", "validTo") if k in profile]
    instants = [datetime.fromisoformat(v) for v in validity]
    schedule = profile["chargingSchedule"]
    raw = schedule.get("startSchedule")
    if profile["chargingProfileKind"] != "Absolute" or raw is None:
        return instants
    begin = datetime.fromisoformat(raw)
    periods = schedule["chargingSchedulePeriod"]
    instants += [begin + timedelta(seconds=float(p["startPeriod"])) for p in periods]
    if schedule.get("duration") is not None:
        instants.append(begin + timedelta(seconds=float(schedule["duration"])))
    return instants


def share_cap(limits_a: Sequence[float], cap_a: float | None) -> list[float]:
    """Share a charger-wide cap among connectors, each up to its own limit (water filling)."""
    if cap_a is None:
        return list(limits_a)
    shares = [0.0] * len(limits_a)
    left_a = cap_a
    order = sorted(range(len(limits_a)), key=lambda i: limits_a[i])
    for rank, index in enumerate(order):
        shares[index] = min(limits_a[index], left_a / (len(order) - rank))
        left_a -= shares[index]
    return shares


def _within(valid_from: str | None, valid_to: str | None, at: datetime) -> bool:
    """True when ``at`` lies in [validFrom, validTo)."""
    if valid_from is not None and at < datetime.fromisoformat(valid_from):
        return False
    return valid_to is None or at < datetime.fromisoformat(valid_to)


def _schedule_start(
    profile: dict[str, Any], schedule: dict[str, Any], at: datetime, session_start: datetime | None
) -> datetime | None:
    """When the schedule's period 0 begins, per the profile kind."""
    kind = profile["chargingProfileKind"]
    if kind == "Relative":
        return session_start or at  # no session yet: the schedule would start now
    raw = schedule.get("startSchedule")
    if raw is None:
        return None  # an Absolute or Recurring schedule without a start is not usable
    start = datetime.fromisoformat(raw)
    if kind == "Recurring" and at >= start:
        period_s = _RECURRENCE_S[profile.get("recurrencyKind", "Daily")]
        cycles = math.floor((at - start).total_seconds() / period_s)
        start = datetime.fromtimestamp(start.timestamp() + cycles * period_s, start.tzinfo)
    return start


def _same_id(held: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when both profiles carry the same chargingProfileId."""
    return bool(held["chargingProfileId"] == new["chargingProfileId"])
