"""The base load an over-limit reading calls for, without the cars' answer to it. Pure.

A reading over the limit may mean the building rose. Until a window passes
without another one, :class:`~controller.base_load.BaseLoadEstimate` plans with
no less than the latest over-limit reading less what the cars reported before it
(:func:`over_limit_bases`), or, once lower, a settled reading after it. The
term stays with that reading: it does not move on to the newest one, nor read
the cars' reports after it. Both show the cars' answer to the reading and our
own increases since, which the reports before have not caught up with: read as
building load they paused a car just cut for a newcomer, twice, and cut a car
back each time it was raised for a whole window. docs/architecture.md, "The
base-load estimate".
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.car_floors import Phases, Report
from controller.config import HeadroomConfig
from controller.meter_book import REPORT_SKEW_S, MeterView
from controller.model import PhaseValues
from controller.node_modes import node_load_a
from controller.snapshot import SessionView


def reported_before(reports: Sequence[Report], at: float) -> PhaseValues | None:
    """The car's last report that arrived by ``at`` (``None``: none)."""
    last = None
    for arrived, values in reports:
        if arrived > at:
            break
        last = values
    return last


def over_limit_bases(
    readings: Sequence[MeterView],
    sessions: Sequence[SessionView],
    config: HeadroomConfig,
    skew_s: float = REPORT_SKEW_S,
) -> list[Phases]:
    """Each reading less every car's last report from before it (by ``skew_s``), per site
    phase; a car without one is left in the reading.

    Unlike :func:`~controller.car_floors.draw_floor` this reads neither the limits sent
    nor the reports after the reading: it tells how far the building rose, and a car
    that followed a decrease before the reading without reporting it makes it read low,
    never high (the window, and the settled readings after it, hold the estimate then).
    """
    return [_less_reports(view, sessions, config, skew_s) for view in readings]


def _less_reports(
    view: MeterView, sessions: Sequence[SessionView], config: HeadroomConfig, skew_s: float
) -> Phases:
    before = (view.good_at if view.good_at is not None else float("-inf")) - skew_s

    def reported(session: SessionView) -> PhaseValues | None:
        return reported_before(session.reports, before)

    return node_load_a(view, sessions, config, reported)
