"""HIL scenario files: YAML, validated at load, every error naming its key path.

A scenario embeds a controller config (``site:``, ``control:`` and the
chargers, with the keys of :mod:`controller.config`), adds the simulated
devices (EV models, the building's base load), a timeline of events, the
run's length and the assertions that decide pass or fail::

    name: evening-peak
    duration_s: 60
    policy: weighted_fair
    site: {id: depot, max_current_a: 120, safety_margin_a: 2, failsafe_current_a: 6}
    devices:
      chargers: [{id: cp, count: 10, rotations: [L1L2L3, L2L3L1, L3L1L2], ocpp: "2.0.1"}]
      evs: {car: {max_current_a: 32, phases: 3, delay_s: [1, 5]}}
      base_load: {constant_a: [30, 22, 18]}
    timeline:
      - {at_s: 2, event: arrive, chargers: all, ev: car, soc: 0.3, stagger_s: 2}
      - {at_s: 30, event: base_load, scale: 1.5}
    assertions: ["seconds_over_limit_unexplained <= 0", "utilization >= 0.85"]

docs/hil.md documents every key. Cross-references (a charger or EV named in
the timeline that does not exist) are checked after the shapes, and reported
with the same ``key.path: reason`` lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.config import (
    ChargerSettings,
    ControlSettings,
    DeadlineSettings,
    HeadroomConfig,
    SiteLimits,
    format_errors,
)
from controller.errors import ConfigError
from hil.events import (
    Arrive,
    BaseLoadChange,
    ChargerConnection,
    ControllerRestart,
    Depart,
    Event,
    LimitChange,
    MeterFault,
)
from hil.real_devices import OcppEndpoint, RealMeter

MAX_TIME_SCALE = 100  # beyond it a run is CPU time, not scenario time (docs/hil.md)
Rotation = Literal["L1L2L3", "L2L3L1", "L3L1L2", "L1L3L2", "L3L2L1", "L2L1L3"]
Phases3 = tuple[float, float, float]
NonNegative = Annotated[float, Field(ge=0)]
Soc = Annotated[float, Field(ge=0, le=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


__all__ = [
    "Arrive",
    "BaseLoadChange",
    "ChargerConnection",
    "ControllerRestart",
    "Depart",
    "LimitChange",
    "MeterFault",
    "Scenario",
    "load_scenario",
    "parse_scenario",
]


@dataclass(frozen=True, slots=True)
class SimCharger:
    """One simulated charger: the controller's settings of it and how the simulator plays it."""

    settings: ChargerSettings
    meter_interval_s: float
    quirks: Mapping[str, bool | float]
    ocpp: str = "1.6"
    """The OCPP version the simulated charger speaks: ``1.6`` or ``2.0.1``."""
    real: bool = False
    """A real charger: no simulator; the rig waits for it to connect."""


class ChargerSpec(ChargerSettings):
    """A charger, or with ``count`` a group of them named ``{id}-01``, ``{id}-02``…"""

    count: Annotated[int, Field(ge=1, le=500)] | None = None
    rotations: list[Rotation] | None = None  # cycled over the group (overrides phase_rotation)
    meter_interval_s: Annotated[float, Field(ge=0.25, le=60)] = 1.0
    quirks: dict[str, bool | float] = Field(default_factory=dict)  # see hil/quirks.py
    ocpp: Literal["1.6", "2.0.1"] = "1.6"  # the version the simulated charger speaks
    real: bool = False  # a real charger that connects by itself: no simulator

    @field_validator("ocpp", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        """``ocpp: 1.6`` unquoted is a YAML number: read it as the version it names."""
        return "1.6" if value == 1.6 else value  # the version, not a magic number

    def expand(self) -> list[SimCharger]:
        """Each charger of the spec (one, or ``count``)."""
        sim_only = {"count", "rotations", "meter_interval_s", "quirks", "ocpp", "real"}
        own = self.model_dump(exclude=sim_only)
        if self.count is None:
            return [self._sim(own)]
        out = []
        for i in range(self.count):
            data = {**own, "id": f"{self.id}-{i + 1:02d}"}
            if self.rotations:
                data["phase_rotation"] = self.rotations[i % len(self.rotations)]
            out.append(self._sim(data))
        return out

    def _sim(self, settings: dict[str, Any]) -> SimCharger:
        return SimCharger(
            ChargerSettings.model_validate(settings),
            self.meter_interval_s,
            dict(self.quirks),
            self.ocpp,
            self.real,
        )


class EvSpec(_Strict):
    """An EV model: the onboard charger, the battery and how fast it follows a new limit."""

    max_current_a: Annotated[float, Field(ge=6, le=125)] = 32.0
    phases: Literal[1, 2, 3] = 3  # draws on the charger's first ``phases`` lines
    battery_kwh: Annotated[float, Field(gt=0, le=1000)] = 60.0
    soc: Soc = 0.3
    delay_s: NonNegative | tuple[NonNegative, NonNegative] = 2.0
    taper_soc: Annotated[float, Field(gt=0, lt=1)] | None = None  # CC-CV taper above it
    overshoot_a: Annotated[float, Field(ge=0, le=32)] = 0.0  # above a new, higher limit…
    overshoot_s: Annotated[float, Field(ge=0, le=60)] = 0.0  # …for this long after following it

    @field_validator("delay_s")
    @classmethod
    def _range(cls, value: float | tuple[float, float]) -> float | tuple[float, float]:
        if isinstance(value, tuple) and value[0] > value[1]:
            raise ValueError("delay_s: [min, max] with min ≤ max")
        return value

    @property
    def max_delay_s(self) -> float:
        """The longest response delay this model can draw."""
        return self.delay_s[1] if isinstance(self.delay_s, tuple) else self.delay_s


class LoadStep(_Strict):
    """From ``at_s`` on, ``current_a`` per site phase."""

    at_s: NonNegative
    current_a: Phases3


class CsvLoad(_Strict):
    """A recorded load: a CSV with columns ``t_s,l1_a,l2_a,l3_a`` (header row required)."""

    path: Annotated[str, Field(min_length=1)]  # relative to the scenario file
    start_s: NonNegative = 0.0  # where in the recording the run starts
    speed: Annotated[float, Field(gt=0, le=100_000)] = 1.0  # recording seconds per run second


class BaseLoadSpec(_Strict):
    """The non-controllable load: exactly one of ``constant_a``, ``steps``, ``csv``."""

    constant_a: Phases3 | None = None
    steps: Annotated[list[LoadStep], Field(min_length=1)] | None = None
    csv: CsvLoad | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        given = [k for k in ("constant_a", "steps", "csv") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of constant_a, steps, csv")
        return self


class Devices(_Strict):
    """The devices around the controller: simulated, or real where the scenario says so."""

    chargers: Annotated[list[ChargerSpec], Field(min_length=1)]
    evs: dict[str, EvSpec] = Field(default_factory=dict)
    base_load: BaseLoadSpec = Field(default_factory=lambda: BaseLoadSpec(constant_a=(0, 0, 0)))
    meter: RealMeter | None = None  # a real grid meter; None: the simulated one
    ocpp: OcppEndpoint = Field(default_factory=OcppEndpoint)
    connect_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0  # for real devices

    def real_chargers(self) -> list[str]:
        """The ids of the chargers that are real."""
        return [sim.settings.id for spec in self.chargers if spec.real for sim in spec.expand()]


def _check_assertion(text: str) -> str:
    """``KPI OP NUMBER`` with a KPI the runner computes."""
    from hil.assertions import parse_assertion
    from hil.kpis import KPI_NAMES

    kpi = parse_assertion(text).kpi
    if kpi not in KPI_NAMES:
        raise ValueError(f"unknown KPI {kpi!r}; known: {', '.join(KPI_NAMES)}")
    return text


class Scenario(_Strict):
    """One scenario file, validated."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str = ""
    duration_s: Annotated[float, Field(gt=0, le=7 * 86_400)]
    time_scale: Annotated[float, Field(ge=1, le=MAX_TIME_SCALE)] = 1.0
    seed: int = 1
    policy: str | None = None
    over_limit_allowance_s: NonNegative | None = None
    site: SiteLimits
    control: ControlSettings = Field(default_factory=ControlSettings)
    deadline: DeadlineSettings = Field(default_factory=DeadlineSettings)
    devices: Devices
    timeline: list[Event] = Field(default_factory=list)
    assertions: list[Annotated[str, AfterValidator(_check_assertion)]] = Field(default_factory=list)
    _base_dir: Path = PrivateAttr(default_factory=Path)

    @property
    def base_dir(self) -> Path:
        """The folder relative paths (a CSV load) are read from: the scenario file's."""
        return self._base_dir

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str | None) -> str | None:
        from policies import POLICIES

        if value is not None and value not in POLICIES:
            raise ValueError(f"unknown policy {value!r}; known: {', '.join(sorted(POLICIES))}")
        return value

    def chargers(self) -> list[SimCharger]:
        """Every charger, groups expanded."""
        return [sim for spec in self.devices.chargers for sim in spec.expand()]

    def controller_config(self, meter_port: int, policy: str | None = None) -> HeadroomConfig:
        """The controller's config for this run: the simulated meter on loopback at
        ``meter_port``, or the real one the scenario names."""
        control = self.control.model_dump()
        control["policy"] = policy or self.policy or self.control.policy
        endpoint = self.devices.ocpp
        meter: dict[str, Any] = {
            "meter": {"host": "127.0.0.1", "port": meter_port, "poll_interval_s": 0.5}
        }
        real = self.devices.meter
        if real is not None and real.modbus is not None:
            meter = {"meter": real.modbus.model_dump()}
        elif real is not None:
            meter = {"mqtt_meter": real.mqtt}
        return HeadroomConfig.model_validate(
            {
                "site": self.site.model_dump(),
                "control": control,
                "deadline": self.deadline.model_dump(by_alias=True),
                "ocpp": {"host": endpoint.host, "port": endpoint.port, "call_timeout_s": 5},
                **meter,
                "chargers": [c.settings.model_dump() for c in self.chargers()],
            }
        )

    def real_devices(self) -> list[str]:
        """The real devices, named for messages: ``meter`` and the real chargers' ids."""
        meter = ["meter"] if self.devices.meter is not None else []
        return meter + self.devices.real_chargers()


def parse_scenario(data: Any, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate already-parsed YAML; raises ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top level): expected a mapping of keys to values"])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_errors(exc)) from exc
    scenario._base_dir = base_dir or Path()
    from hil.checks import cross_check

    problems = cross_check(scenario)
    if problems:
        raise ConfigError(source, problems)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ConfigError listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from exc
    return parse_scenario(data, source, Path(path).resolve().parent)
