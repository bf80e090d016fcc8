"""Load reserved on the limit tree for sessions the policy does not steer. Pure.

Three kinds of session are taken out of the problem and their worst case is
added to the base load instead: a charger that ignores its setpoints (its
full rating), a session below a group in fail-safe (the fail-safe current, on
the site and every group above it), and a session restored after a restart
that its charger has not confirmed yet (the larger of its last setpoint and
the fail-safe current, on the site and every group above it; see
:mod:`controller.restored`).
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.config import HeadroomConfig
from controller.node_modes import Phases, nodes_above
from controller.restored import reserve_a
from controller.snapshot import SessionView, SiteSnapshot


def site_phases(
    config: HeadroomConfig, charger_id: str, charger_phases: tuple[int, ...]
) -> tuple[int, ...]:
    """The site phases a charger's phases ``charger_phases`` (0=L1) are wired to."""
    charger = config.charger(charger_id)
    wiring = charger.site_phases() if charger else (0, 1, 2)
    return tuple(sorted({wiring[p] for p in charger_phases if p < len(wiring)}))


def reserve_noncompliant(
    snapshot: SiteSnapshot, config: HeadroomConfig, base: Phases, keys: frozenset[str]
) -> tuple[Phases, dict[str, SessionView]]:
    """Base load with the full rating of each non-compliant charger's phases added."""
    ignored = {s.key: s for s in snapshot.sessions if s.key in keys}
    load = list(base)
    for session in ignored.values():
        charger = config.charger(session.charger_id)
        rating_a = charger.max_current_a if charger else 0.0
        for phase in charger.site_phases() if charger else (0, 1, 2):
            load[phase] += rating_a
    return (load[0], load[1], load[2]), ignored


def reserve_failsafe(
    snapshot: SiteSnapshot,
    config: HeadroomConfig,
    base: Phases,
    groups_a: dict[str, Phases],
    keys: set[str],
    current_a: float,
) -> tuple[Phases, dict[str, Phases]]:
    """``current_a`` on the phases of each session in ``keys``, added to the base load of
    the site and of every group above it."""
    sessions = [(s, current_a) for s in snapshot.sessions if s.key in keys]
    return _reserve(config, base, groups_a, sessions)


def reserve_unconfirmed(
    sessions: Iterable[SessionView],
    config: HeadroomConfig,
    base: Phases,
    groups_a: dict[str, Phases],
    failsafe_a: float,
) -> tuple[Phases, dict[str, Phases]]:
    """Each restored session's :func:`~controller.restored.reserve_a` on its phases, added
    to the base load of the site and of every group above it."""
    reserved = [(s, reserve_a(s.restored, failsafe_a)) for s in sessions if s.restored]
    return _reserve(config, base, groups_a, reserved)


def _reserve(
    config: HeadroomConfig,
    base: Phases,
    groups_a: dict[str, Phases],
    sessions: Iterable[tuple[SessionView, float]],
) -> tuple[Phases, dict[str, Phases]]:
    load = {config.site.id: list(base)} | {g: list(v) for g, v in groups_a.items()}
    for session, current_a in sessions:
        charger = config.charger(session.charger_id)
        phases = session.belief.phases or tuple(range(charger.phases if charger else 3))
        for node in [config.site.id, *nodes_above(config, session.charger_id)]:
            node_load = load.setdefault(node, [0.0, 0.0, 0.0])
            for phase in site_phases(config, session.charger_id, phases):
                node_load[phase] += current_a
    site = load.pop(config.site.id)
    return (site[0], site[1], site[2]), {n: (v[0], v[1], v[2]) for n, v in load.items()}
