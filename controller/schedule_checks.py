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
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import structlog

from controller.clock import Clock
from controller.compliance import ScheduleCheck, checks_due, judge_composite
from controller.config import OcppSettings
from controller.dispatcher import Dispatcher
from controller.model import ChargerLink, CompositeLimit, ProfilePurpose, ScheduleReader
from controller.model import ScheduleStatus as Status
from controller.ocpp.composite import COMPOSITE_DURATION_S

log = structlog.get_logger(__name__)

CHECKED_PURPOSES = (ProfilePurpose.TX, ProfilePurpose.TX_DEFAULT)
"""Routes whose composite shows one connector's setpoint; a ChargePointMaxProfile carries
the sum of the charger's connectors, so the composite of one cannot be compared."""

CheckHook = Callable[[ScheduleCheck, CompositeLimit, str | None], None]


class ScheduleChecks:
    """The composite-schedule checks of one site and the sessions they flagged."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        links: Callable[[str], ChargerLink | None],
        clock: Clock,
        settings: OcppSettings,
        on_check: CheckHook | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._links = links
        self._clock = clock
        self._interval_s = settings.composite_check_interval_s
        self._tolerance_a = settings.composite_tolerance_a
        self._on_check = on_check
        self._checked: dict[str, tuple[int, float]] = {}  # key → (transaction, when)
        self._flagged: dict[str, tuple[int, str]] = {}  # key → (transaction, why)
        self.unsupported: set[str] = set()
        """Chargers that answered that they cannot report a composite schedule."""

    @property
    def flagged(self) -> dict[str, str]:
        """Sessions whose charger contradicted its setpoint, and why."""
        return {key: why for key, (_, why) in self._flagged.items()}

    def prune(self, sessions: Mapping[str, int]) -> None:
        """Forget what belonged to sessions that ended (``sessions``: key → transaction id).

        A session whose charger holds no setpoint any more (it reconnected or
        rebooted) is checked again after its next accepted one; a flag stays.
        """
        for book in (self._checked, self._flagged):
            for key in [k for k, v in book.items() if sessions.get(k) != v[0]]:
                del book[key]
        held = self._dispatcher.held
        for key in [k for k in self._checked if k not in held]:
            del self._checked[key]

    def start_due(self) -> int:
        """Start the checks that are due where the charger is free; how many started."""
        routes = self._dispatcher.routes
        skip = {
            *self._flagged,
            *self.unsupported,
            *(cid for cid, r in routes.items() if r.purpose not in CHECKED_PURPOSES),
        }
        due = checks_due(
            self._dispatcher.held, self._checked, skip, self._clock.monotonic(), self._interval_s
        )
        return sum(
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
        if self._dispatcher.held.get(check.key) != check.held:
            return  # the setpoint changed or ended meanwhile: this answer proves nothing
        tx = check.held.transaction_id
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
