"""Asking chargers what they enforce: GetCompositeSchedule after accepted setpoints.

:class:`ScheduleChecks` runs the checks :func:`controller.compliance.checks_due`
plans: once after the first accepted setpoint of each session, then every
``ocpp.composite_check_interval_s``. Each check runs in the charger's own
dispatcher slot (:meth:`Dispatcher.run_alone`), so a charger never has two
calls in flight and no check delays a decrease. A composite schedule that
contradicts the setpoint (:func:`controller.compliance.judge_composite`)
flags the session until it ends; the loop then reserves the charger's rating
as for a charger that overdraws. A charger that cannot answer (Rejected,
NotImplemented, NotSupported) is not asked again; the measured-current check
still watches it.

The fail-safe default is checked too, once the charger accepted it on boot, on
connector 1 while no session runs there: a schedule that contradicts it marks
the charger untrusted (:mod:`controller.untrusted`: its rating is reserved,
idle or not) until a later boot's check agrees.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import structlog

from controller.clock import Clock
from controller.compliance import ScheduleCheck, checks_due, judge_composite
from controller.config import OcppSettings
from controller.dispatch import Held
from controller.dispatcher import FAILSAFE_PROFILE_ID, Dispatcher
from controller.model import (
    ChargerLink,
    CompositeLimit,
    ProfileCommand,
    ProfilePurpose,
    ScheduleReader,
)
from controller.model import ScheduleStatus as Status
from controller.ocpp.composite import COMPOSITE_DURATION_S

log = structlog.get_logger(__name__)

CHECKED_PURPOSES = (ProfilePurpose.TX, ProfilePurpose.TX_DEFAULT)
"""Routes whose composite shows one connector's setpoint; a ChargePointMaxProfile carries
the sum of the charger's connectors, so the composite of one cannot be compared."""

CheckHook = Callable[[ScheduleCheck, CompositeLimit, str | None], None]

FAILSAFE_CHECK_TX = -1
"""The transaction id a check of the fail-safe default carries (it belongs to none)."""


def is_failsafe(command: ProfileCommand) -> bool:
    """True for the fail-safe default the dispatcher installs on boot."""
    return (
        command.connector_id == 0
        and command.purpose is ProfilePurpose.TX_DEFAULT
        and command.profile_id == FAILSAFE_PROFILE_ID
    )


class ScheduleChecks:
    """The composite-schedule checks of one site and the sessions they flagged."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        links: Callable[[str], ChargerLink | None],
        clock: Clock,
        settings: OcppSettings,
        on_check: CheckHook | None = None,
        on_failsafe: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._links = links
        self._clock = clock
        self._interval_s = settings.composite_check_interval_s
        self._tolerance_a = settings.composite_tolerance_a
        self._on_check = on_check
        self._on_failsafe = on_failsafe
        self._checked: dict[str, tuple[int, float]] = {}  # key → (transaction, when)
        self._flagged: dict[str, tuple[int, str]] = {}  # key → (transaction, why)
        self.unsupported: set[str] = set()
        """Chargers that answered that they cannot report a composite schedule."""
        self._failsafe_due: dict[str, float] = {}  # charger → the fail-safe it accepted
        self._sessions: set[str] = set()

    @property
    def flagged(self) -> dict[str, str]:
        """Sessions whose charger contradicted its setpoint, and why."""
        return {key: why for key, (_, why) in self._flagged.items()}

    def prune(self, sessions: Mapping[str, int]) -> None:
        """Forget what belonged to sessions that ended (``sessions``: key → transaction id).

        A session whose charger holds no setpoint any more (it rebooted) is checked
        again after its next accepted one; a flag stays.
        """
        self._sessions = set(sessions)
        for book in (self._checked, self._flagged):
            for key in [k for k, v in book.items() if sessions.get(k) != v[0]]:
                del book[key]
        held = self._dispatcher.held
        for key in [k for k in self._checked if k not in held]:
            del self._checked[key]

    def failsafe_installed(self, charger_id: str, limit_a: float) -> None:
        """The charger accepted its fail-safe default: check that it applies it."""
        self._failsafe_due[charger_id] = limit_a

    def _start_failsafe_checks(self) -> int:
        started = 0
        for charger_id, limit_a in list(self._failsafe_due.items()):
            key = f"{charger_id}/1"
            if charger_id in self.unsupported or key in self._sessions:
                del self._failsafe_due[charger_id]  # its session's own check covers it
                continue
            held = Held(limit_a, self._clock.monotonic(), FAILSAFE_CHECK_TX)
            check = ScheduleCheck(key, charger_id, 1, held)
            if self._dispatcher.run_alone(charger_id, functools.partial(self._check, check)):
                del self._failsafe_due[charger_id]
                started += 1
        return started

    def start_due(self) -> int:
        """Start the checks that are due where the charger is free; how many started."""
        started = self._start_failsafe_checks() if self._failsafe_due else 0
        routes = self._dispatcher.routes
        skip = {
            *self._flagged,
            *self.unsupported,
            *(cid for cid, r in routes.items() if r.purpose not in CHECKED_PURPOSES),
        }
        due = checks_due(
            self._dispatcher.held, self._checked, skip, self._clock.monotonic(), self._interval_s
        )
        return started + sum(
            self._dispatcher.run_alone(check.charger_id, functools.partial(self._check, check))
            for check in due
        )

    async def _check(self, check: ScheduleCheck) -> None:
        link = self._links(check.charger_id)
        if link is None:
            return
        if not isinstance(link, ScheduleReader):
            self.unsupported.add(check.charger_id)
            return
        result = await link.composite_limit(check.connector_id, COMPOSITE_DURATION_S)
        tx = check.held.transaction_id
        if tx == FAILSAFE_CHECK_TX:
            self._judged_failsafe(check, result)
            return
        if self._dispatcher.held.get(check.key) != check.held:
            return  # the setpoint changed or ended meanwhile: this answer proves nothing
        self._checked[check.key] = (tx, self._clock.monotonic())
        why = judge_composite(check.held.limit_a, result, self._tolerance_a)
        fields = {
            "session": check.key,
            "setpoint_a": check.held.limit_a,
            "reported_a": result.limit_a,
            "status": result.status.value,
            "detail": result.detail,
        }
        if result.status is Status.UNSUPPORTED:
            self.unsupported.add(check.charger_id)
            log.info("charger cannot report its composite schedule", **fields)
        elif result.status is Status.FAILED:
            log.warning("composite schedule check failed", **fields)
        elif why is not None:
            self._flagged[check.key] = (tx, why)
            log.error("charger's composite schedule contradicts its setpoint", **fields)
        else:
            log.info("composite schedule agrees", **fields)
        if self._on_check is not None:
            self._on_check(check, result, why)

    def _judged_failsafe(self, check: ScheduleCheck, result: CompositeLimit) -> None:
        """A fail-safe check's answer: untrusted if it contradicts, unless a session began."""
        if check.key in self._sessions:
            return  # a car plugged in meanwhile: the schedule may show its TxProfile
        why = judge_composite(check.held.limit_a, result, self._tolerance_a)
        fields = {"charger_id": check.charger_id, "failsafe_a": check.held.limit_a}
        if result.status is Status.UNSUPPORTED:
            self.unsupported.add(check.charger_id)
            log.info("charger cannot report its composite schedule", **fields)
            if self._on_check is not None:  # counted once, like a session's check
                self._on_check(check, result, why)
        elif result.status is Status.READ:
            if why is not None:
                log.error("charger does not apply its fail-safe default", why=why, **fields)
            if self._on_failsafe is not None:
                self._on_failsafe(check.charger_id, why)
