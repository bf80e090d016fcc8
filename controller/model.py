"""Domain events and commands: what adapters report and what the loop sends.

Adapters (OCPP, Modbus, MQTT) turn wire messages into these frozen events
and hand them to an :data:`EventSink`; the site state applies them. The
dispatcher turns decisions into :class:`ProfileCommand` and a
:class:`ChargerLink` carries each to its charger, answering with a
:class:`CommandResult`. Nothing here touches a socket.

Times (``at``) are seconds on the controller's monotonic clock
(:mod:`controller.clock`) at the moment the adapter received the data.
Currents are amperes per phase, powers watts, energies watt-hours.
Per-phase tuples are indexed by the device's own L1, L2, L3.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

PhaseValues = tuple[float | None, float | None, float | None]
"""One value per phase L1, L2, L3; ``None`` where the device did not report it."""


def connector_key(charger_id: str, connector_id: int) -> str:
    """The site-wide name of a connector, e.g. ``cp-01/1``."""
    return f"{charger_id}/{connector_id}"


# --- events from chargers -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChargerConnected:
    """A charger opened its OCPP connection (websocket handshake accepted)."""

    charger_id: str
    at: float
    protocol: str = "ocpp1.6"


@dataclass(frozen=True, slots=True)
class ChargerBooted:
    """A charger sent BootNotification and we accepted it: it may be commanded now."""

    charger_id: str
    at: float
    vendor: str = ""
    model: str = ""
    firmware: str = ""
    reconnected: bool = False
    """No BootNotification: a charger that came back without restarting, adopted as booted
    (it still holds its profiles)."""


@dataclass(frozen=True, slots=True)
class ChargerDisconnected:
    """A charger's connection closed, for whatever reason."""

    charger_id: str
    at: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ConnectorStatusChanged:
    """StatusNotification: ``status`` is the OCPP status (``Charging``, ``Faulted``...).

    ``connector_id`` 0 is the charger as a whole.
    """

    charger_id: str
    connector_id: int
    at: float
    status: str
    error_code: str = "NoError"
    vendor_error_code: str = ""
    info: str = ""


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """A transaction started on a connector; ``transaction_id`` is ours."""

    charger_id: str
    connector_id: int
    transaction_id: int
    at: float
    id_tag: str = ""
    meter_start_wh: float = 0.0


@dataclass(frozen=True, slots=True)
class SessionStopped:
    """A transaction ended (StopTransaction)."""

    charger_id: str
    transaction_id: int
    at: float
    meter_stop_wh: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SessionNeeds:
    """What a session needs, and by when: set by the car, the operator or a rig.

    Sources: OCPP 2.0.1 NotifyEVChargingNeeds (``source="ev"``), the API
    (``"operator"``), a HIL scenario (``"scenario"``). ``departure_at`` is a
    wall-clock UNIX time in seconds (a departure is a time of day, not a loop
    instant); ``energy_wh`` is the energy still wanted; ``ev_min_a`` /
    ``ev_max_a`` are the car's own current limits; ``priority`` overrides the
    charger's priority weight for this session. ``cable_max_a`` is the rating of
    the cable plugged in and ``phases`` the number of phases the car charges on,
    as a 2.0.1 station or EV says (TransactionEvent ``cableMaxCurrent``,
    ``numberOfPhasesUsed``; NotifyEVChargingNeeds ``requestedEnergyTransfer``).
    ``None`` leaves a field as it was. The needs last until the session stops.
    """

    charger_id: str
    connector_id: int
    at: float
    departure_at: float | None = None
    energy_wh: float | None = None
    ev_min_a: float | None = None
    ev_max_a: float | None = None
    priority: float | None = None
    source: str = "operator"
    cable_max_a: float | None = None
    phases: int | None = None


@dataclass(frozen=True, slots=True)
class ExternalLimitChanged:
    """A limit set on a charger by someone else (OCPP 2.0.1 NotifyChargingLimit): respect it.

    ``evse_id`` 0 caps the charger as a whole (the sum of its connectors),
    another the sessions on that EVSE. ``limit_a`` is amperes per phase;
    ``None`` means the limit from ``source`` was cleared (ClearedChargingLimit).
    ``source`` is who set it (``EMS``, ``SO``, ``CSO``, ``Other``).
    """

    charger_id: str
    evse_id: int
    at: float
    limit_a: float | None
    source: str = "Other"


@dataclass(frozen=True, slots=True)
class ChargerMeasurement:
    """MeterValues from one connector, already converted to A, W and Wh.

    ``current_a`` is ``Current.Import`` per charger phase; ``offered_a`` is
    ``Current.Offered`` (what the charger offers the car: the best sign that
    a profile is applied).
    """

    charger_id: str
    connector_id: int
    at: float
    current_a: PhaseValues = (None, None, None)
    power_w: float | None = None
    offered_a: float | None = None
    energy_wh: float | None = None
    soc_percent: float | None = None
    transaction_id: int | None = None


# --- events from meters ---------------------------------------------------


class Quality(enum.Enum):
    """How far a meter reading can be trusted."""

    GOOD = "good"
    INVALID = "invalid"  # NaN, sentinel, out of physical bounds: not used
    STALE = "stale"  # no fresh reading within the staleness bound


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One poll of a meter: current per phase (A, import positive) and total power (W).

    ``source_at`` is when the source measured it, as wall-clock UNIX seconds (a
    Modbus poll's receive time; an MQTT payload's own timestamp), if known. The
    state ages the reading by it and never lets an older reading replace a newer one.
    """

    meter_id: str
    at: float
    current_a: PhaseValues
    power_w: float | None
    quality: Quality = Quality.GOOD
    detail: str = ""
    source_at: float | None = None


@dataclass(frozen=True, slots=True)
class MeterFailed:
    """A poll failed (timeout, connection refused, Modbus exception); ``detail`` says how."""

    meter_id: str
    at: float
    detail: str


Event = (
    ChargerConnected
    | ChargerBooted
    | ChargerDisconnected
    | ConnectorStatusChanged
    | SessionStarted
    | SessionStopped
    | SessionNeeds
    | ExternalLimitChanged
    | ChargerMeasurement
    | MeterReading
    | MeterFailed
)

EventSink = Callable[[Event], None]
"""Where adapters put events. It must not block: it only records and wakes the loop."""


# --- commands to chargers -------------------------------------------------


class ProfilePurpose(enum.Enum):
    """The OCPP 1.6 charging profile purposes Headroom uses."""

    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


@dataclass(frozen=True, slots=True)
class ProfileCommand:
    """Set a current limit on a connector (0 = the whole charger).

    ``lease_s`` bounds how long the limit holds: the charger falls back to
    its lower-stack default by itself when the lease runs out unless it is
    renewed. ``None`` means indefinite (only for the fail-safe default).
    ``transaction_id`` is required for :attr:`ProfilePurpose.TX`.
    """

    charger_id: str
    connector_id: int
    purpose: ProfilePurpose
    limit_a: float
    stack_level: int
    profile_id: int
    lease_s: float | None = None
    transaction_id: int | None = None
    number_phases: int | None = None


class CommandStatus(enum.Enum):
    """Outcome of one command, as recorded."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"  # the charger answered Rejected or NotSupported
    CALL_ERROR = "CallError"  # the charger answered with a CALLERROR
    TIMEOUT = "Timeout"  # no answer within the timeout
    NOT_CONNECTED = "NotConnected"  # no live connection to send it on


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What became of a :class:`ProfileCommand`."""

    command: ProfileCommand
    status: CommandStatus
    latency_s: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when the charger accepted the command."""
        return self.status is CommandStatus.ACCEPTED


class ChargerLink(Protocol):
    """The narrow port the dispatcher commands one charger through."""

    charger_id: str

    async def set_profile(self, command: ProfileCommand) -> CommandResult:
        """Send one profile; never raises for a charger's answer, only records it."""
        ...

    async def prepare(self) -> None:
        """Learn the charger's capabilities and set it up; never raises."""
        ...


# --- asking a charger what it enforces ----------------------------------------


class ScheduleStatus(enum.Enum):
    """How a GetCompositeSchedule ended."""

    READ = "read"  # the charger answered with its composite schedule
    UNSUPPORTED = "unsupported"  # Rejected, NotImplemented or NotSupported: do not ask again
    FAILED = "failed"  # no answer, connection closed, or an answer we cannot read


@dataclass(frozen=True, slots=True)
class CompositeLimit:
    """What a charger says it enforces on a connector now (GetCompositeSchedule).

    ``limit_a`` is amperes per phase in force at the schedule's start (a schedule
    in W converted with the nominal voltage and its ``numberPhases``); ``None``
    with :attr:`ScheduleStatus.READ` means the schedule sets no limit at all.
    """

    status: ScheduleStatus
    limit_a: float | None = None
    detail: str = ""


@runtime_checkable
class ScheduleReader(Protocol):
    """The optional ability of a :class:`ChargerLink` to report its composite schedule."""

    async def composite_limit(self, connector_id: int, duration_s: int) -> CompositeLimit:
        """Ask for the composite schedule of ``connector_id``; never raises."""
        ...
