"""How far each metered node of the limit tree can be trusted, and its base load. Pure.

Each node with a meter (the site, and any group from ``groups:`` with a
meter of its own) has a mode from that meter's view:

* ``normal``: good, fresh data;
* ``hold``: doubtful data (stale, NaN, out of range, failed polls, jumps,
  frozen): the sessions below the node get no more than they hold now;
* ``failsafe``: doubtful for ``control.failsafe_after_s`` or longer, or no
  good reading since start: the sessions below get the fail-safe current.

A session takes the worst mode of the nodes above it, so a doubtful feeder
meter holds and then fail-safes that feeder's chargers only.

The base load of a metered node is its reading minus the draw of the
sessions below it (when the meter includes the chargers), else the reading
itself; a group without a meter has none of its own (its parent's covers it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping

from controller.config import HeadroomConfig
from controller.meter_book import MeterView
from controller.model import PhaseValues
from controller.snapshot import SessionView

Phases = tuple[float, float, float]


class Mode(enum.Enum):
    """How the loop treats a node (or the site), by how far it trusts its meter."""

    NORMAL = "normal"
    HOLD = "hold"
    FAILSAFE = "failsafe"


_RANK = {Mode.NORMAL: 0, Mode.HOLD: 1, Mode.FAILSAFE: 2}

NodeMode = tuple[Mode, str]


def view_mode(view: MeterView, at: float, failsafe_after_s: float, what: str = "meter") -> NodeMode:
    """The mode one meter view calls for at ``at``, and why."""
    if view.good_at is None:
        detail = f": {view.problem}" if view.problem else ""
        return Mode.FAILSAFE, f"no good {what} reading yet{detail}"
    if not view.problem:
        return Mode.NORMAL, ""
    since = view.problem_since if view.problem_since is not None else at
    doubtful_s = at - since
    if doubtful_s >= failsafe_after_s:
        return Mode.FAILSAFE, f"{what} doubtful for {doubtful_s:.0f} s: {view.problem}"
    return Mode.HOLD, f"{what} doubtful: {view.problem}"


def group_modes(
    meters: Mapping[str, MeterView], config: HeadroomConfig, at: float
) -> dict[str, NodeMode]:
    """The mode of every metered group (the site's own mode is :func:`view_mode` of it)."""
    groups = {g.id for g in config.groups}
    failsafe_after_s = config.control.failsafe_after_s
    return {
        node: view_mode(view, at, failsafe_after_s, f"{node} meter {view.meter_id}".strip())
        for node, view in meters.items()
        if node in groups
    }


def nodes_above(config: HeadroomConfig, charger_id: str) -> list[str]:
    """The groups above a charger, nearest first."""
    charger = config.charger(charger_id)
    chain: list[str] = []
    group_id = charger.group if charger else None
    parents = {g.id: g.parent for g in config.groups}
    while group_id is not None and group_id not in chain:
        chain.append(group_id)
        group_id = parents.get(group_id)
    return chain


def worst(modes: Iterable[NodeMode]) -> NodeMode:
    """The most conservative of ``modes`` (normal when there are none)."""
    return max(modes, key=lambda m: _RANK[m[0]], default=(Mode.NORMAL, ""))


def session_modes(
    sessions: Iterable[SessionView], config: HeadroomConfig, modes: Mapping[str, NodeMode]
) -> dict[str, NodeMode]:
    """Each session's mode from the metered groups above it (site mode not included)."""
    if not modes:  # no group has a meter of its own (most sites): every session is normal
        return {s.key: worst(()) for s in sessions}
    return {
        s.key: worst(modes[n] for n in nodes_above(config, s.charger_id) if n in modes)
        for s in sessions
    }


def reading_a(view: MeterView, voltage_v: float) -> list[float]:
    """A meter view's current per site phase; a power-only meter's power spread evenly."""
    current = view.current_a
    if current is not None and all(v is not None for v in current):
        return [float(v or 0.0) for v in current]
    per_phase = (view.power_w or 0.0) / voltage_v / 3
    return [per_phase] * 3


def node_load_a(
    view: MeterView,
    sessions: Iterable[SessionView],
    config: HeadroomConfig,
    draw: Callable[[SessionView], PhaseValues | None],
) -> Phases:
    """A node's meter minus the ``sessions`` below it (by ``draw``), per site phase, ≥ 0.

    A meter that does not include the chargers is the base load as it reads.
    """
    load = reading_a(view, config.site.voltage_v)
    if view.includes_chargers:
        for session in sessions:
            drawn = draw(session)
            if drawn is None:
                continue  # not seen since the reading: left inside the base load
            charger = config.charger(session.charger_id)
            wiring = charger.site_phases() if charger else (0, 1, 2)
            for charger_phase, value in enumerate(drawn):
                if value and charger_phase < len(wiring):
                    load[wiring[charger_phase]] -= value
    return (max(load[0], 0.0), max(load[1], 0.0), max(load[2], 0.0))


def group_loads_a(
    meters: Mapping[str, MeterView],
    sessions: Iterable[SessionView],
    booted: frozenset[str],
    config: HeadroomConfig,
) -> dict[str, Phases]:
    """The base load of every group whose meter has good data now."""
    groups = {g.id for g in config.groups}
    sessions = [s for s in sessions if s.charger_id in booted]
    loads = {}
    for node, view in meters.items():
        if node not in groups or view.good_at is None or view.problem:
            continue
        below = set(config.chargers_below(node))
        loads[node] = node_load_a(
            view,
            [s for s in sessions if s.charger_id in below],
            config,
            lambda s, n=node: s.draw_at_node_meter_a.get(n),  # type: ignore[misc]
        )
    return loads
