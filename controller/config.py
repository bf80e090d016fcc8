"""The site configuration: one YAML file per deployment, validated at load.

Every error names the key path and the reason (``chargers[2].max_current_a:
Input should be a valid number``); :func:`load_config` collects all of them at
once so an operator fixes a file in one pass. The models forbid unknown keys:
a typo is an error, never a silently ignored setting.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from controller.errors import ConfigError
from controller.meters.modbus_settings import MeterSettings
from controller.meters.mqtt_settings import MqttMeterSettings
from controller.meters.node_settings import (
    MeterSpec,
    NodeMeter,
    NodeMeterSettings,
    OcppNodeMeter,
    check_meters,
    legacy_site_meter,
)

__all__ = ["HeadroomConfig", "MeterSettings", "MqttMeterSettings", "load_config", "parse_config"]

IEC_61851_MIN_CURRENT_A = 6.0  # below it the EV stops: a fail-safe is 0 or at least this


def _check_tls_files(section: str, cert_file: str | None, key_file: str | None) -> None:
    """Refuse a certificate or key path that names no file, with its key path."""
    for key, path in (("tls_cert_file", cert_file), ("tls_key_file", key_file)):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{section}.{key}: no file at {path}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteLimits(_Strict):
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


class ControlSettings(_Strict):
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


class OcppSettings(_Strict):
    """The OCPP websocket endpoint chargers connect to.

    With ``tls_cert_file`` (and ``tls_key_file`` unless the key is in the same
    file) the endpoint is ``wss://`` (security profile 2); chargers with a
    ``password_hash`` must authenticate with HTTP Basic auth (profiles 1 and 2).
    """

    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 9000
    admit_unknown: bool = False
    call_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    meter_values_interval_s: Annotated[int, Field(ge=0, le=3600)] = 10
    composite_check: bool = True
    """Check accepted setpoints against each charger's GetCompositeSchedule."""
    composite_check_interval_s: Annotated[float, Field(ge=1, le=86400)] = 300.0
    composite_tolerance_a: Annotated[float, Field(ge=0.1, le=10)] = 0.5
    tls_cert_file: Annotated[str, Field(min_length=1)] | None = None
    tls_key_file: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_tls_files("ocpp", self.tls_cert_file, self.tls_key_file)
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise ValueError("ocpp.tls_key_file needs ocpp.tls_cert_file")
        return self


class MetricsSettings(_Strict):
    """Prometheus text at http://HOST:PORT/metrics."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9100


class TelemetrySettings(_Strict):
    """MQTT telemetry: site state each decision and events, under PREFIX/SITE/."""

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    prefix: Annotated[str, Field(min_length=1, pattern=r"^[^#+]+$")] = "headroom"
    client_id: str | None = None
    username: str | None = None
    password: str | None = None


class AuditSettings(_Strict):
    """Where every decision and command is recorded (SQLite, write-ahead log)."""

    path: Annotated[str, Field(min_length=1)] = "headroom-audit.db"
    fsync: bool = False


class StoreSettings(_Strict):
    """Where state that must survive a restart is kept (SQLite, write-ahead log)."""

    path: Annotated[str, Field(min_length=1)] = "headroom-state.db"
    fsync: bool = False


class ApiToken(_Strict):
    """One bearer token of the HTTP API: its name (audited as who), role and SHA-256."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    role: Literal["viewer", "manager", "admin"]
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ApiSettings(_Strict):
    """The HTTP API and dashboard at http(s)://HOST:PORT/ (TLS with a certificate)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    tokens: list[ApiToken] = Field(default_factory=list)
    tls_cert_file: Annotated[str, Field(min_length=1)] | None = None
    tls_key_file: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        _check_tls_files("api", self.tls_cert_file, self.tls_key_file)
        if (self.tls_key_file is None) != (self.tls_cert_file is None):
            raise ValueError("api.tls_cert_file and api.tls_key_file go together")
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("api.tokens: names must differ (the audit log records them)")
        return self


class ChargerSettings(_Strict):
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


class GroupSettings(_Strict):
    """A node of the limit tree between the site and its chargers: a feeder, a panel.

    A group without a meter of its own is taken to carry only its chargers (no
    other load); its limits hold on every phase like the site's.
    """

    id: Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_.\-]+$")]
    parent: str | None = None
    max_current_a: Annotated[float, Field(gt=0)] | None = None
    max_power_kw: Annotated[float, Field(gt=0)] | None = None
    safety_margin_a: Annotated[float, Field(ge=0)] = 0.0


_CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class PriceWindow(_Strict):
    """An energy price from ``from`` to ``to`` (local ``HH:MM``; may wrap past midnight)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: Annotated[str, Field(alias="from", pattern=_CLOCK_TIME)]
    end: Annotated[str, Field(alias="to", pattern=_CLOCK_TIME)]
    price: float


_Amps = Annotated[float, Field(ge=0, allow_inf_nan=False)]

HOURS_PER_DAY = 24


class DeadlineSettings(_Strict):
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


class HeadroomConfig(_Strict):
    """One site: its limits, meter, chargers and the control settings."""

    site: SiteLimits
    control: ControlSettings = Field(default_factory=ControlSettings)
    ocpp: OcppSettings = Field(default_factory=OcppSettings)
    meter: MeterSettings | None = None
    mqtt_meter: MqttMeterSettings | None = None
    meters: list[NodeMeterSettings] = Field(default_factory=list)
    metrics: MetricsSettings | None = None
    audit: AuditSettings | None = None
    store: StoreSettings | None = None
    telemetry: TelemetrySettings | None = None
    api: ApiSettings | None = None
    deadline: DeadlineSettings = Field(default_factory=DeadlineSettings)
    groups: list[GroupSettings] = Field(default_factory=list)
    chargers: Annotated[list[ChargerSettings], Field(min_length=1)]
    _charger_index: tuple[list[ChargerSettings], dict[str, ChargerSettings]] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        legacy = [k for k in ("meter", "mqtt_meter") if getattr(self, k) is not None]
        if legacy and self.meters:
            raise ValueError(
                f"{legacy[0]} and meters are two ways to set the site meter: put it in meters "
                f"(with node: {self.site.id}) and drop {legacy[0]}"
            )
        if not self.meters and len(legacy) != 1:
            raise ValueError(
                "the grid meter: set exactly one of meter (Modbus TCP) and mqtt_meter (MQTT), "
                "or list the meters under meters"
            )
        ids = [c.id for c in self.chargers]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"chargers: duplicate id(s) {', '.join(duplicates)}")
        if self.site.id in ids:
            raise ValueError(f"chargers: id {self.site.id!r} is the site's id; use another")
        self._check_groups(set(ids))
        if self.meters:
            check_meters(self.meters, self.site.id, {g.id for g in self.groups}, set(ids))
        self._check_failsafe_fits()
        return self

    def _check_groups(self, charger_ids: set[str]) -> None:
        """Groups form a tree under the site; chargers name groups that exist."""
        names = [g.id for g in self.groups]
        clash = sorted(
            {n for n in names if names.count(n) > 1 or n in charger_ids}
            | ({self.site.id} & set(names))
        )
        if clash:
            raise ValueError(f"groups: id(s) {', '.join(clash)} used twice (site, group, charger)")
        known = set(names)
        for i, group in enumerate(self.groups):
            if group.parent is not None and group.parent not in known:
                raise ValueError(f"groups[{i}].parent: no group {group.parent!r}")
        for group in self.groups:  # a cycle never reaches the site
            seen, node = set(), group
            while node.parent is not None:
                if node.id in seen:
                    raise ValueError(f"groups: {group.id!r} is inside a cycle of parents")
                seen.add(node.id)
                node = next(g for g in self.groups if g.id == node.parent)
        for i, charger in enumerate(self.chargers):
            if charger.group is not None and charger.group not in known:
                raise ValueError(f"chargers[{i}].group: no group {charger.group!r}")

    def _check_group_failsafes(self) -> None:
        """The fail-safe profiles under each group fit its current limit too."""
        failsafe_a = self.site.failsafe_current_a
        for group in self.groups:
            if group.max_current_a is None:
                continue
            per_phase = [0.0, 0.0, 0.0]
            for charger in self.chargers:
                if group.id in self._groups_above(charger.group):
                    for phase in charger.site_phases():
                        per_phase[phase] += failsafe_a * charger.connectors
            bound_a = group.max_current_a - group.safety_margin_a
            if max(per_phase) > bound_a:
                raise ValueError(
                    f"site.failsafe_current_a: the fail-safe profiles under group {group.id!r} add "
                    f"up to {max(per_phase):.1f} A on one phase, over its "
                    f"{bound_a:.1f} A (max_current_a − safety_margin_a)"
                )

    def _groups_above(self, group_id: str | None) -> set[str]:
        """The group and every group above it."""
        chain: set[str] = set()
        while group_id is not None and group_id not in chain:
            chain.add(group_id)
            group_id = next((g.parent for g in self.groups if g.id == group_id), None)
        return chain

    def group_order(self) -> list[GroupSettings]:
        """Groups with every parent before its children."""
        ordered: list[GroupSettings] = []
        remaining = list(self.groups)
        while remaining:
            placed = {g.id for g in ordered}
            ready = [g for g in remaining if g.parent is None or g.parent in placed]
            ordered += ready
            remaining = [g for g in remaining if g not in ready]
        return ordered

    def _check_failsafe_fits(self) -> None:
        """Invariant 3: the fail-safe profiles of every charger together stay under the limit."""
        self._check_group_failsafes()
        site = self.site
        per_phase = [0.0, 0.0, 0.0]
        for charger in self.chargers:
            for phase in charger.site_phases():
                per_phase[phase] += site.failsafe_current_a * charger.connectors
        worst_a = max(per_phase) + site.base_load_reserve_a
        if site.max_current_a is not None and worst_a > site.max_current_a - site.safety_margin_a:
            raise ValueError(
                f"site.failsafe_current_a: {site.failsafe_current_a} A on every connector adds up "
                f"to {worst_a:.1f} A on one phase (with site.base_load_reserve_a), over "
                f"max_current_a − safety_margin_a = "
                f"{site.max_current_a - site.safety_margin_a:.1f} A"
            )
        total_w = (sum(per_phase) + 3 * site.base_load_reserve_a) * site.voltage_v
        max_w = site.max_power_w
        if max_w is not None and total_w > max_w - 3 * site.safety_margin_a * site.voltage_v:
            raise ValueError(
                f"site.failsafe_current_a: the fail-safe profiles add up to "
                f"{total_w / 1000:.1f} kW (with site.base_load_reserve_a), over max_power_kw "
                f"minus the margin"
            )

    def meter_max_step_a(self, node: str | None = None) -> float:
        """The largest believable change of a phase current between two readings of a
        meter on ``node`` (default: the site): 1.5 × the node's fuse, else the site's."""
        if self.control.meter_max_step_a is not None:
            return self.control.meter_max_step_a
        site = self.site
        fuse_a = site.max_current_a
        if fuse_a is None and site.max_power_w is not None:
            fuse_a = site.max_power_w / site.voltage_v / 3
        group = next((g for g in self.groups if g.id == node), None)
        if group is not None and group.max_current_a is not None:
            fuse_a = group.max_current_a
        elif group is not None and group.max_power_kw is not None:
            fuse_a = group.max_power_kw * 1000 / site.voltage_v / 3
        return 1.5 * (fuse_a or 1000.0)

    def node_meters(self) -> list[NodeMeter]:
        """Every meter with its node: the ``meters`` list, or the legacy site meter."""
        if self.meters:
            return list(self.meters)
        return [legacy_site_meter(self.site.id, self.meter, self.mqtt_meter)]

    def meter_specs(self) -> dict[str, MeterSpec]:
        """What the site state needs of each meter, by meter id."""
        specs = {}
        for meter in self.node_meters():
            node = meter.node or self.site.id
            stale_s = meter.stale_s or self._default_stale_s(meter)
            phase_map: tuple[int, ...] = (0, 1, 2)
            if isinstance(meter, OcppNodeMeter):
                charger = self.charger(meter.charger)
                phase_map = charger.site_phases() if charger else phase_map
            seen: frozenset[str] | None = frozenset()
            if meter.includes_chargers:
                seen = frozenset(self.chargers_below(node))
            if not self.meters:  # the legacy site meter: judged exactly as before
                seen, stale_s = None, self.control.meter_stale_s
            specs[meter.id] = MeterSpec(
                meter.id,
                node,
                meter.includes_chargers,
                stale_s,
                self.meter_max_step_a(node),
                seen,
                phase_map,
            )
        return specs

    def chargers_below(self, node: str) -> list[str]:
        """The chargers under ``node`` (the site: all of them)."""
        if node == self.site.id:
            return [c.id for c in self.chargers]
        return [c.id for c in self.chargers if node in self._groups_above(c.group)]

    def _default_stale_s(self, meter: NodeMeter) -> float:
        """No fresh reading for max(3 polls, ``control.meter_stale_s``) is stale."""
        stale_s = self.control.meter_stale_s
        if isinstance(meter, OcppNodeMeter):  # a charger reports every meter_values_interval_s
            return max(stale_s, 3.0 * (self.ocpp.meter_values_interval_s or 10))
        if isinstance(meter, MeterSettings):
            return max(stale_s, 3.0 * meter.poll_interval_s)
        return stale_s

    def charger(self, charger_id: str) -> ChargerSettings | None:
        """The settings of a configured charger (a dict lookup: the loop asks per session)."""
        # Read the private attribute from pydantic's own dict: ``self._charger_index`` goes
        # through the model's ``__getattr__`` (~2 µs), and the loop asks per session.
        private = self.__pydantic_private__
        index = private.get("_charger_index") if private is not None else None
        if index is None or index[0] is not self.chargers:  # model_copy may swap the list
            index = self._charger_index = (self.chargers, {c.id: c for c in self.chargers})
        return index[1].get(charger_id)


def _location(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "(top level)"


def format_errors(error: ValidationError) -> list[str]:
    """One line per problem: ``key.path: reason``."""
    lines = []
    for item in error.errors():
        loc = [p for p in item["loc"] if isinstance(p, int | str)]
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see docs/configuration.md)"
        lines.append(f"{_location(loc)}: {message}")
    return lines


def parse_config(data: Any, source: str = "<config>") -> HeadroomConfig:
    """Validate already-parsed YAML; raises ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys to values"])
    try:
        return HeadroomConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_errors(exc)) from exc


def load_config(path: str | Path) -> HeadroomConfig:
    """Read and validate a one-site YAML config file; raises ConfigError listing every problem."""
    return parse_config(_read_yaml(path), str(path))


def parse_sites(data: Any, source: str = "<config>") -> list[HeadroomConfig]:
    """One site, or several under ``sites:``, each validated; errors name ``sites[i].key``."""
    if not (isinstance(data, dict) and "sites" in data):
        return [parse_config(data, source)]
    extra = sorted(set(data) - {"sites"})
    sites = data["sites"]
    problems = [f"{key}: unknown key beside sites (each site carries its own)" for key in extra]
    if not isinstance(sites, list) or not sites:
        raise ConfigError(source, [*problems, "sites: expected a non-empty list of site configs"])
    configs: list[HeadroomConfig] = []
    for i, item in enumerate(sites):
        try:
            configs.append(parse_config(item, source))
        except ConfigError as exc:
            problems += [f"sites[{i}].{p}" for p in exc.problems]
    problems += _clashes(configs)
    if problems:
        raise ConfigError(source, problems)
    return configs


def _clashes(configs: list[HeadroomConfig]) -> list[str]:
    """Sites in one process must differ in id and in the ports they listen on."""
    problems = []
    seen: dict[object, int] = {}
    for i, c in enumerate(configs):
        keys: list[tuple[str, object]] = [("site.id", c.site.id)]
        if c.ocpp.port:
            keys.append(("ocpp.port", c.ocpp.port))
        if c.metrics is not None and c.metrics.port:
            keys.append(("metrics.port", c.metrics.port))
        for name, value in keys:
            if (name, value) in seen:
                problems.append(
                    f"sites[{i}].{name}: {value} is also used by sites[{seen[name, value]}]"
                )
            seen.setdefault((name, value), i)
    return problems


def load_sites(path: str | Path) -> list[HeadroomConfig]:
    """Read and validate a config file of one site or several; ConfigError lists every problem."""
    return parse_sites(_read_yaml(path), str(path))


def _read_yaml(path: str | Path) -> Any:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}not valid YAML: {problem}"]) from exc
    return data
