"""The loop's book of sessions flagged as not following their setpoints.

Two sources are kept here: overdrawing (:func:`controller.compliance.check`, every
decision) and the flags a restart brought back from the state store, each until
its session ends or, for an overdraw, follows a setpoint again. The schedule
checks keep their own flags (:mod:`controller.schedule_checks`); the loop adds them.
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog

from controller.compliance import Compliance, check, follows
from controller.dispatch import Held
from controller.snapshot import SiteSnapshot
from controller.targets import OVERDRAWS

log = structlog.get_logger(__name__)


class NonCompliance:
    """Overdraw flags and flags restored from before a restart."""

    def __init__(self) -> None:
        self._compliance = Compliance({}, frozenset())
        self._restored_flags: dict[str, tuple[int, str]] = {}  # key → (transaction, why)

    def restored(self, key: str) -> bool:
        """True when ``key`` carries a flag from before a restart."""
        return key in self._restored_flags

    def why(self) -> dict[str, str]:
        """Each flagged session and why: overdrawing, or a restored flag's reason."""
        why = {key: reason for key, (_, reason) in self._restored_flags.items()}
        why |= dict.fromkeys(self._compliance.flagged, OVERDRAWS)
        return why

    def restore(self, key: str, transaction_id: int, why: str) -> None:
        """A session flagged before a restart (from the state store) is flagged again."""
        self._restored_flags[key] = (transaction_id, why)

    def check(
        self, snapshot: SiteSnapshot, held: Mapping[str, Held], now: float, timeout_s: float
    ) -> None:
        """Flag the sessions that overdraw their setpoints ``held``; clear the others."""
        if self._restored_flags:
            self._clear_restored_flags(snapshot, held)
        before = self._compliance.flagged
        self._compliance = check(snapshot.sessions, held, self._compliance, now, timeout_s)
        for key in self._compliance.flagged - before:
            log.error("charger does not follow its setpoint; reserving its rating", session=key)
        for key in before - self._compliance.flagged:
            log.info("charger follows its setpoint again", session=key)

    def _clear_restored_flags(self, snapshot: SiteSnapshot, held: Mapping[str, Held]) -> None:
        """Drop flags of sessions that ended, and overdraw flags of sessions now following."""
        sessions = {s.key: s for s in snapshot.sessions}
        for key, (tx, why) in list(self._restored_flags.items()):
            session = sessions.get(key)
            if session is None or session.transaction_id != tx:
                del self._restored_flags[key]
            elif why == OVERDRAWS and follows(session, held.get(key)):
                del self._restored_flags[key]
                log.info("charger follows its setpoint again", session=key)
