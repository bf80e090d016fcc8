"""Stale records after a restart, over real websockets: the charger's word wins.

A session stored before a restart whose transaction has ended meanwhile must
not keep its reservation nor be commanded again and again: a charger that
boots and reports the connector Available drops it, and so does a charger that
reconnects silently and refuses the TxProfile re-asserted for it (OCPP 1.6 lets
a charger refuse one only for a transaction it does not run). The status path
alone is tested on plain data in ``tests/test_restored.py``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from controller.persist import SessionRecord, SetpointRecord
from controller.service import SiteController
from controller.store import StateStore
from hil.charge_point import SimulatedChargePoint
from hil.meter import SimulatedMeter
from hil.site import SimulatedSite
from tests.rig import config_for, rig, until

STALE_TX = 999


def store_stale_session(path: Path) -> None:
    """cp-0/1 running transaction 999 at 16 A, as a controller stored it before a crash."""
    now = datetime.now(UTC).timestamp()
    record = SessionRecord(
        charger_id="cp-0",
        connector_id=1,
        transaction_id=STALE_TX,
        started_at=now - 600,
        setpoint=SetpointRecord(
            limit_a=16.0, ceiling_a=16.0, accepted_at=now - 20, lease_until=now + 100
        ),
    )
    store = StateStore(path)
    store.put("session/t", "cp-0/1", record.model_dump(mode="json"), datetime.now(UTC))
    store.close()


async def test_a_charger_that_boots_without_the_transaction_drops_it(tmp_path: Path) -> None:
    """The charger boots and reports connector 1 Available: the stored session is gone (by
    that status, or by the refusal of a TxProfile re-asserted before the status arrived:
    the two race), it is never commanded again, and the store forgets it."""
    path = tmp_path / "state.db"
    store_stale_session(path)
    async with rig(config_keys={"store": {"path": str(path)}}) as r:
        await until(lambda: r.controller.loop.decisions > 3, 10, "a few decisions")
        assert r.controller.state.snapshot(0.0).sessions == ()
        refused = r.controller.dispatcher.results.get("Rejected", 0)
        assert refused <= 1
        decisions = r.controller.loop.decisions
        await until(lambda: r.controller.loop.decisions > decisions + 3, 10, "more decisions")
        assert r.controller.dispatcher.results.get("Rejected", 0) == refused
        await until(
            lambda: r.controller.store is not None and r.controller.store.items("session/t") == {},
            5,
            "the stale record deleted from the store",
        )


async def test_a_refused_re_assertion_drops_the_stored_session(tmp_path: Path) -> None:
    """The charger reconnects without booting (no status), so the stored session is
    re-asserted; the charger refuses a TxProfile for a transaction it does not run, and the
    session is dropped (its reservation with it) instead of being re-sent every tick."""
    path = tmp_path / "state.db"
    site = SimulatedSite(lambda _t: (10.0, 10.0, 10.0), [], time.monotonic)
    meter = SimulatedMeter(source=site.meter_values)
    await meter.start()
    config = config_for(meter.port, config_keys={"store": {"path": str(path)}})
    first = SiteController(config)
    await first.start()
    port = first.ocpp.port
    cp = SimulatedChargePoint("cp-0", f"ws://127.0.0.1:{port}/ocpp", meter_interval_s=0.25)
    second = None
    try:
        await cp.start()
        await first.stop()
        store_stale_session(path)
        ocpp = config.ocpp.model_copy(update={"port": port})
        second = SiteController(config.model_copy(update={"ocpp": ocpp}))
        await second.start()
        [restored] = second.state.snapshot(0.0).sessions
        assert restored.transaction_id == STALE_TX
        await cp.reconnect()
        state = second.state
        await until(lambda: state.snapshot(0.0).sessions == (), 10, "the session dropped")
        refused = second.dispatcher.results.get("Rejected", 0)
        assert refused == 1
        decisions = second.loop.decisions
        await until(lambda: second.loop.decisions > decisions + 3, 10, "more decisions")
        assert second.dispatcher.results.get("Rejected", 0) == refused  # not re-sent
    finally:
        await cp.stop()
        if second is not None:
            await second.stop()
        await meter.stop()
