"""The cars of offline chargers in a node's readings: each counted once, on the safe side. Pure.

A charger that is offline is not steered, so its car is in the base load
(:mod:`controller.base_load`). The reasoning: docs/architecture.md, "The base-load
estimate", item 4.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.car_floors import Phases
from controller.config import HeadroomConfig
from controller.meter_book import REPORT_SKEW_S
from controller.model import PhaseValues
from controller.setpoint_log import SetpointLog
from controller.snapshot import SessionView


class AwayCars:
    """The cars of offline chargers in each reading: each counted once, on the safe side.

    A car whose charger is offline is not steered, so it is in the base load. Until it has
    settled, it comes off each reading at its floor (:func:`~controller.car_floors.draw_floor`:
    a reading from before it ramped up must not take it low) and what its charger may let
    it draw, :func:`away_reserved_a`, goes on top. Its reports have stopped, so a ramp after
    the last one stays in the readings beside that reservation (counted twice, the safe
    side). Once it has had its charger's settle time since the first decision that found
    the charger gone (every limit it holds was sent before), it has settled where it
    stays: it is left in the readings at what it draws, and only what its fail-safe could
    add above its floor, should its lease run out, goes on top.
    """

    def __init__(
        self,
        away: Sequence[SessionView],
        config: HeadroomConfig,
        setpoints: SetpointLog,
        settle_s: Mapping[str, float],
        skew_s: float = REPORT_SKEW_S,
    ) -> None:
        self.sessions = tuple(away)
        self._reserved = [away_reserved_a(s, config, setpoints) for s in away]
        self._failsafe = [_failsafe_a(s, config) for s in away]
        # A reading's time may be late by the skew: it is settled from that much later.
        self._settled_from = [_settled_from(s, setpoints, settle_s) + skew_s for s in away]

    def count(
        self, i: int, at: float, floor: Phases | None, sub: list[float], add: list[float]
    ) -> None:
        """Count the ``i``-th car in the reading at ``at``: what comes off it (``sub``) and
        what goes on top (``add``), per site phase."""
        f = floor or (0.0, 0.0, 0.0)
        if at >= self._settled_from[i]:
            for p, failsafe_a in enumerate(self._failsafe[i]):
                add[p] += max(failsafe_a - f[p], 0.0)
            return
        for p, reserved_a in enumerate(self._reserved[i]):
            sub[p] += f[p]
            add[p] += reserved_a


def _settled_from(
    session: SessionView, setpoints: SetpointLog, settle_s: Mapping[str, float]
) -> float:
    since = setpoints.away_since(session.key)
    settle = settle_s.get(session.charger_id)
    return float("inf") if since is None or settle is None else since + settle


def away_reserved_a(session: SessionView, config: HeadroomConfig, setpoints: SetpointLog) -> Phases:
    """Per site phase, what the car of an offline charger may draw: the highest limit its
    charger may hold (:meth:`SetpointLog.ceiling`) or its fail-safe once its lease runs
    out, no more than its rating (its rating when no decision on it is logged); no less
    than its last report (a car above its limit is taken at what it drew)."""
    charger = config.charger(session.charger_id)
    rating_a = charger.max_current_a if charger else float("inf")
    ceiling_a = setpoints.ceiling(session.key)
    if ceiling_a is None:
        ceiling_a = float("inf")
    current_a = min(max(ceiling_a, config.site.failsafe_current_a), rating_a)
    last = session.reports[-1][1] if session.reports else (None, None, None)
    return _on_phases(session, config, current_a, last)


def _failsafe_a(session: SessionView, config: HeadroomConfig) -> Phases:
    """Per site phase, what the car may draw once its charger falls to its fail-safe."""
    charger = config.charger(session.charger_id)
    rating_a = charger.max_current_a if charger else float("inf")
    return _on_phases(session, config, min(config.site.failsafe_current_a, rating_a))


def _on_phases(
    session: SessionView,
    config: HeadroomConfig,
    current_a: float,
    last: PhaseValues = (None, None, None),
) -> Phases:
    """``current_a`` on each phase the car draws on, no less than ``last`` on any, per site
    phase."""
    charger = config.charger(session.charger_id)
    wiring = charger.site_phases() if charger else (0, 1, 2)
    phases = session.belief.phases or tuple(range(charger.phases if charger else 3))
    load = [0.0, 0.0, 0.0]
    for p in range(min(3, len(wiring))):
        reported_a = last[p] or 0.0
        if p in phases or reported_a > 0:
            load[wiring[p]] += max(current_a if p in phases else 0.0, reported_a)
    return (load[0], load[1], load[2])
