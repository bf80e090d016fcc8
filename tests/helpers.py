"""Builders for site snapshots and configs that the pure-decision tests share."""

from __future__ import annotations

from typing import Any

from controller.config import HeadroomConfig, parse_config
from controller.learning import EvBelief
from controller.meter_book import MeterView
from controller.snapshot import SessionView, SiteSnapshot


def site_config(chargers: int = 3, **site: Any) -> HeadroomConfig:
    """A 3-phase site with ``chargers`` 32 A chargers wired with rotations L1L2L3, L2L3L1, ..."""
    rotations = ("L1L2L3", "L2L3L1", "L3L1L2")
    return parse_config(
        {
            "site": {
                "id": "site",
                "max_current_a": 63,
                "safety_margin_a": 2,
                "failsafe_current_a": 6,
                **site,
            },
            "meter": {"host": "127.0.0.1"},
            "chargers": [
                {"id": f"cp-{i}", "max_current_a": 32, "phase_rotation": rotations[i % 3]}
                for i in range(chargers)
            ],
        }
    )


def session(
    charger: int,
    tx: int | None = None,
    measured_a: tuple[float, float, float] | None = None,
    measured_at: float = 100.0,
    belief: EvBelief | None = None,
    aligned: bool = True,
) -> SessionView:
    """A running session on connector 1 of charger ``cp-<charger>``.

    ``aligned`` says whether the measurement was in force when the meter was read.
    """
    return SessionView(
        key=f"cp-{charger}/1",
        charger_id=f"cp-{charger}",
        connector_id=1,
        transaction_id=tx if tx is not None else charger + 1,
        started_at=0.0,
        status="Charging",
        measured_a=measured_a,
        measured_at=measured_at if measured_a is not None else None,
        offered_a=None,
        belief=belief or EvBelief(),
        draw_at_meter_a=measured_a if aligned else None,
    )


def snapshot(
    sessions: list[SessionView],
    meter_a: tuple[float, float, float] | None = (10.0, 10.0, 10.0),
    at: float = 100.0,
    meter_at: float | None = 100.0,
    problem: str = "",
    problem_since: float | None = None,
) -> SiteSnapshot:
    """A snapshot at ``at`` with a meter reading and the given sessions."""
    meter = MeterView(
        current_a=meter_a,
        power_w=None if meter_a is None else sum(meter_a) * 230,
        good_at=meter_at,
        problem=problem,
        problem_since=problem_since,
    )
    chargers = frozenset(s.charger_id for s in sessions)
    return SiteSnapshot(at, meter, tuple(sessions), chargers, chargers)
