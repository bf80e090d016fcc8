"""Operator settings over the YAML config: limits, schedules, group limits, priorities. Pure.

A facility manager changes tonight's limit through the API, not by editing the
YAML and restarting. What they set is an :class:`OperatorSettings` value; the
controller decides with :func:`effective_config` of it over the YAML config.

Rules this module owns:

* The YAML config is the physical ceiling. An operator limit (site, schedule,
  group) above the configured rating is refused with a reason; a charger cap
  must lie between 6 A (IEC 61851: below it the EV stops) and the charger's
  configured maximum.
* The effective site limit is the tightest of the configured rating, the
  standing operator limit and every schedule active at that local time. An
  operator can only lower limits, so a mistake never overloads the fuse.
* The effective config is validated like the YAML config (a limit too low for
  the chargers' fail-safe profiles is refused with the config's own reason).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, time
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from controller.config import IEC_61851_MIN_CURRENT_A, HeadroomConfig, format_errors

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["18:00"])]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitOverride(_Model):
    """A lower limit for the site or a group; ``None`` keeps the configured one."""

    max_current_a: Annotated[float, Field(gt=0, le=10000)] | None = None
    max_power_kw: Annotated[float, Field(gt=0, le=100000)] | None = None


class ScheduleEntry(_Model):
    """A site limit that holds on some weekdays between two local times.

    ``end`` before ``start`` runs over midnight (22:00–06:00); the weekday is
    the day the window starts. No ``days`` means every day.
    """

    name: Annotated[str, Field(max_length=80)] = ""
    days: Annotated[list[Weekday], Field(max_length=7)] = Field(default_factory=list)
    start: HHMM
    end: HHMM
    max_current_a: Annotated[float, Field(gt=0, le=10000)] | None = None
    max_power_kw: Annotated[float, Field(gt=0, le=100000)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.max_current_a is None and self.max_power_kw is None:
            raise ValueError("a schedule entry needs max_current_a and/or max_power_kw")
        if self.start == self.end:
            raise ValueError("start and end are equal: the window would be empty")
        return self

    def active(self, local: datetime) -> bool:
        """Whether the window covers the local time ``local``."""
        start, end, now = _hhmm(self.start), _hhmm(self.end), local.time()
        today = WEEKDAYS[local.weekday()]
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        days = set(self.days) or set(WEEKDAYS)
        if start < end:
            return today in days and start <= now < end
        return (today in days and now >= start) or (yesterday in days and now < end)


class ChargerOverride(_Model):
    """A charger's priority weight and a cap below its rating; ``None`` keeps the config."""

    priority: Annotated[float, Field(gt=0, le=100)] | None = None
    max_current_a: Annotated[float, Field(gt=0, le=1000)] | None = None


class OperatorSettings(_Model):
    """Everything a facility manager may change at run time, for one site."""

    timezone: Annotated[str, Field(max_length=64)] = "UTC"
    site: LimitOverride = Field(default_factory=LimitOverride)
    schedules: Annotated[list[ScheduleEntry], Field(max_length=100)] = Field(default_factory=list)
    groups: dict[str, LimitOverride] = Field(default_factory=dict)
    chargers: dict[str, ChargerOverride] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value

    def etag(self) -> str:
        """A strong validator of this value, for ETag / If-Match."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return '"' + hashlib.sha256(text.encode()).hexdigest()[:20] + '"'

    def local(self, at: datetime) -> datetime:
        """``at`` in the site's time zone."""
        return at.astimezone(ZoneInfo(self.timezone))


class Problem(_Model):
    """One refused field: where (``site.max_current_a``) and why."""

    field: str
    reason: str


def _hhmm(text: str) -> time:
    return time(int(text[:2]), int(text[3:]))


def _ceiling_problems(
    where: str,
    wanted: LimitOverride | ScheduleEntry,
    rating_a: float | None,
    rating_kw: float | None,
) -> list[Problem]:
    problems = []
    for key, value, rating, unit in (
        ("max_current_a", wanted.max_current_a, rating_a, "A"),
        ("max_power_kw", wanted.max_power_kw, rating_kw, "kW"),
    ):
        if value is not None and rating is not None and value > rating:
            problems.append(
                Problem(
                    field=f"{where}.{key}",
                    reason=f"{value:g} {unit} is above the physical rating of {rating:g} {unit} "
                    "in the site config (the config's value is the ceiling)",
                )
            )
    return problems


def check_settings(base: HeadroomConfig, settings: OperatorSettings) -> list[Problem]:
    """Why ``settings`` cannot apply to the site of ``base`` (empty: they can)."""
    site = base.site
    problems = _ceiling_problems("site", settings.site, site.max_current_a, site.max_power_kw)
    for i, entry in enumerate(settings.schedules):
        problems += _ceiling_problems(
            f"schedules[{i}]", entry, site.max_current_a, site.max_power_kw
        )
    groups = {g.id: g for g in base.groups}
    for gid, limit in settings.groups.items():
        group = groups.get(gid)
        if group is None:
            problems.append(
                Problem(field=f"groups.{gid}", reason=f"no group {gid!r} in the config")
            )
            continue
        problems += _ceiling_problems(
            f"groups.{gid}", limit, group.max_current_a, group.max_power_kw
        )
    for cid, override in settings.chargers.items():
        problems += _charger_problems(base, cid, override)
    if problems:
        return problems
    return _validation_problems(base, settings)


def _charger_problems(base: HeadroomConfig, cid: str, override: ChargerOverride) -> list[Problem]:
    charger = base.charger(cid)
    if charger is None:
        return [Problem(field=f"chargers.{cid}", reason=f"no charger {cid!r} in the config")]
    cap = override.max_current_a
    if cap is not None and not IEC_61851_MIN_CURRENT_A <= cap <= charger.max_current_a:
        return [
            Problem(
                field=f"chargers.{cid}.max_current_a",
                reason=f"{cap:g} A is outside {IEC_61851_MIN_CURRENT_A:g} A (IEC 61851: below "
                f"it the EV stops) to {charger.max_current_a:g} A (the charger's configured "
                "maximum)",
            )
        ]
    return []


def _validation_problems(base: HeadroomConfig, settings: OperatorSettings) -> list[Problem]:
    """The effective config under the standing limit and each schedule must be valid."""
    cases: list[tuple[str, list[ScheduleEntry]]] = [("site", [])]
    cases += [(f"schedules[{i}]", [e]) for i, e in enumerate(settings.schedules)]
    for where, active in cases:
        try:
            _build(base, settings, active)
        except ValidationError as exc:
            return [Problem(field=where, reason=r) for r in format_errors(exc)]
    return []


def active_schedules(settings: OperatorSettings, at: datetime) -> list[ScheduleEntry]:
    """The schedule entries that hold at the (aware) time ``at``."""
    local = settings.local(at)
    return [e for e in settings.schedules if e.active(local)]


def effective_config(
    base: HeadroomConfig, settings: OperatorSettings, at: datetime
) -> HeadroomConfig:
    """The config the controller decides with at ``at``: ``base`` under the operator's settings.

    Raises ``pydantic.ValidationError`` if the result is not a valid config;
    :func:`check_settings` refuses such settings before they are stored.
    """
    return _build(base, settings, active_schedules(settings, at))


def _tightest(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _build(
    base: HeadroomConfig, settings: OperatorSettings, active: list[ScheduleEntry]
) -> HeadroomConfig:
    data: dict[str, Any] = base.model_dump()
    site = data["site"]
    site["max_current_a"] = _tightest(
        site["max_current_a"], settings.site.max_current_a, *(e.max_current_a for e in active)
    )
    site["max_power_kw"] = _tightest(
        site["max_power_kw"], settings.site.max_power_kw, *(e.max_power_kw for e in active)
    )
    for group in data["groups"]:
        limit = settings.groups.get(group["id"])
        if limit is not None:
            group["max_current_a"] = _tightest(group["max_current_a"], limit.max_current_a)
            group["max_power_kw"] = _tightest(group["max_power_kw"], limit.max_power_kw)
    for charger in data["chargers"]:
        override = settings.chargers.get(charger["id"])
        if override is not None:
            if override.priority is not None:
                charger["priority"] = override.priority
            charger["max_current_a"] = _tightest(charger["max_current_a"], override.max_current_a)
    return HeadroomConfig.model_validate(data)
