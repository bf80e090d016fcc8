"""The site state's book of sessions restored from the state store.

:class:`RestoredSessions` carries each restored session from
:meth:`~RestoredSessions.restore` through its charger's reports: confirmed at the
first site reading after one (:meth:`~RestoredSessions.confirm`), dropped when the
charger contradicts it (:meth:`~RestoredSessions.drop`), and its stored setpoint
handed to the loop once (:meth:`~RestoredSessions.take_resumed`). The rules of
what a report means are in :mod:`controller.restored`; this is their bookkeeping,
on the charger records :class:`~controller.state.SiteState` owns.
"""

from __future__ import annotations

import structlog

from controller.charger_records import ChargerRecord, ConnectorRecord
from controller.meter_book import REPORT_SKEW_S
from controller.model import ChargerMeasurement, connector_key
from controller.restored import Restored, Verdict, judge_measurement
from controller.snapshot import SessionView

log = structlog.get_logger(__name__)


class RestoredSessions:
    """Restored sessions not confirmed yet, and confirmed ones whose setpoint the loop has
    not taken; ``chargers`` is the state's own (shared, not copied)."""

    def __init__(self, chargers: dict[str, ChargerRecord]) -> None:
        self._chargers = chargers
        self._resuming: set[str] = set()  # chargers with a session restored and not taken
        self._confirming: set[str] = set()  # chargers with a restored session reported

    @property
    def confirming(self) -> bool:
        """True while a restored session has been reported and awaits a site reading."""
        return bool(self._confirming)

    def restore(self, view: SessionView) -> None:
        """A session from the state store: managed again, unconfirmed until its charger
        reports it (``view.restored``); the connector's status is left unknown."""
        charger = self._chargers.setdefault(view.charger_id, ChargerRecord())
        connector = charger.connector(view.connector_id)
        connector.transaction_id, connector.started_at = view.transaction_id, view.started_at
        connector.belief, connector.needs = view.belief, view.needs
        connector.needs_register_wh, connector.meter_start_wh = (
            view.needs_register_wh,
            view.meter_start_wh,
        )
        connector.restored = connector.resumed = view.restored or Restored()
        self._resuming.add(view.charger_id)

    def measured(
        self, charger: ChargerRecord, connector: ConnectorRecord, event: ChargerMeasurement
    ) -> bool:
        """Judge a measurement of a restored session; False when it is to be ignored."""
        if connector.restored is None or connector.transaction_id is None:
            return True
        verdict = judge_measurement(
            connector.transaction_id, connector.status, event.transaction_id
        )
        if verdict is Verdict.IGNORE or (verdict is Verdict.CONFIRM and not charger.booted):
            # Only a charger that can be commanded confirms: until then the session stays
            # reserved as restored, not a car of an offline charger.
            return False
        if verdict is Verdict.DROP:
            self.drop(event.charger_id, connector, "another transaction reported")
        elif connector.reported_at is None:
            # Confirmed at the next site reading: one the base load can take its draw off.
            connector.reported_at = event.at
            self._confirming.add(event.charger_id)
        return True

    def confirm(self, reading_at: float) -> None:
        """Confirm the restored sessions of booted chargers reported before the site reading
        at ``reading_at`` (beyond the skew): the base load can take their draw off it, so
        the policy can steer them on data rather than count them twice."""
        for cid in list(self._confirming):
            charger, waiting = self._chargers[cid], False
            for c in charger.connectors.values():
                if c.restored is None or c.reported_at is None:
                    continue
                if not charger.booted or reading_at < c.reported_at + REPORT_SKEW_S:
                    waiting = True
                    continue
                log.info(
                    "restored session confirmed", charger_id=cid, transaction_id=c.transaction_id
                )
                c.restored, c.reported_at = None, None
            if not waiting:
                self._confirming.discard(cid)

    def take_resumed(self) -> list[tuple[str, int, Restored]]:
        """Each session confirmed since the restart on a booted charger that has not booted
        since, with what the store said of its setpoint (key, transaction, record); each is
        given once (:func:`controller.restored.resumed_a` tells whether it still holds)."""
        taken: list[tuple[str, int, Restored]] = []
        for cid in list(self._resuming):
            charger = self._chargers[cid]
            waiting = False
            for conn_id, c in charger.connectors.items():
                if c.resumed is None or c.transaction_id is None:
                    continue
                if c.restored is not None or not charger.booted:
                    waiting = True
                    continue
                taken.append((connector_key(cid, conn_id), c.transaction_id, c.resumed))
                c.resumed = None
            if not waiting:
                self._resuming.discard(cid)
        return taken

    def drop(self, charger_id: str, connector: ConnectorRecord, why: str) -> None:
        """Forget a restored session that its charger contradicts (see controller/restored.py)."""
        if connector.restored is None or connector.transaction_id is None:
            return
        log.warning(
            "restored session dropped",
            charger_id=charger_id,
            transaction_id=connector.transaction_id,
            reason=why,
        )
        connector.transaction_id, connector.restored, connector.resumed = None, None, None
        connector.needs, connector.needs_register_wh, connector.reported_at = None, None, None
