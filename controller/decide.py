"""From a frozen site snapshot to the current each session may draw. Pure.

This module owns three decisions that sit between the site state and the
policy:

* **How far the meter can be trusted** (:func:`meter_mode`). Good data →
  ``normal``. Doubtful data (stale, NaN, out of range, failed polls) →
  ``hold``: no session gets more than it holds now. Doubtful for longer
  than ``control.failsafe_after_s``, or no reading since start → ``failsafe``:
  every session gets the fail-safe current that the config proved fits
  under the limit. A missing reading is never read as 0 W. A group with a
  meter of its own is judged the same way for the sessions below it
  (:mod:`controller.node_modes`); sessions below a fail-safe group get the
  fail-safe current, reserved on every node above them.
* **The non-controllable load** (:func:`base_load_a`): site meter minus the
  chargers' draw measured at the time of that meter reading, per site phase.
  A session with no measurement from then is left inside the base load (its
  draw is counted twice at worst, which errs on the safe side).
* **The problem the policy solves** (:func:`build_problem`): the site node,
  one node per charger (its rating shared by its connectors) and one demand
  per session, with the phases and maximum learned from the car. A limit set
  by others (OCPP 2.0.1 NotifyChargingLimit) lowers the charger node's rating
  (EVSE 0) or the session's maximum (one EVSE).

The policy's answer is checked against the invariants before it is used; a
broken answer is replaced by the fail-safe allocation and reported.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from controller.config import HeadroomConfig
from controller.node_modes import (
    Mode,
    NodeMode,
    group_loads_a,
    group_modes,
    node_load_a,
    session_modes,
    view_mode,
)
from controller.reserve import (
    reserve_failsafe,
    reserve_noncompliant,
    reserve_unconfirmed,
    site_phases,
)
from controller.restored import Restored
from controller.restored import target_a as restored_target_a
from controller.snapshot import SessionView, SiteSnapshot
from controller.tariff import horizon
from controller.untrusted import reserve_idle, unbounded
from policies import Allocation, AllocationProblem, ConnectorAllocation, LimitNode, Policy
from policies.problem import IEC_61851_MIN_CURRENT_A, Horizon, SessionDemand
from policies.verify import violations

Phases = tuple[float, float, float]

OVERDRAWS = "draws more than its setpoint"
"""Why a session is non-compliant when no other reason is given."""

__all__ = ["Decision", "Mode", "Phases", "Target", "base_load_a", "decide", "meter_mode"]


@dataclass(frozen=True, slots=True)
class Target:
    """The limit one session should hold, and where to send it."""

    charger_id: str
    connector_id: int
    transaction_id: int
    limit_a: float
    reason: str
    started_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision of the loop: the mode, what was solved and the targets."""

    at: float
    mode: Mode
    mode_reason: str
    base_load_a: Phases
    problem: AllocationProblem
    allocation: Allocation
    targets: Mapping[str, Target]
    rejected: tuple[str, ...] = ()
    node_modes: Mapping[str, NodeMode] = field(default_factory=dict)
    """The mode of each metered group, by node (the site's is ``mode``)."""


def meter_mode(snapshot: SiteSnapshot, config: HeadroomConfig) -> tuple[Mode, str]:
    """How far the loop may trust the site meter now, and why."""
    return view_mode(snapshot.meter, snapshot.at, config.control.failsafe_after_s)


def base_load_a(snapshot: SiteSnapshot, config: HeadroomConfig) -> Phases:
    """Site meter minus the chargers' draw at the time of that reading, per site phase, ≥ 0.

    A session's draw is its reports interpolated to the time of the reading. (Capping
    it at the held setpoint would look safer, but a car follows a decrease only
    seconds later: the estimate would jump up after every decrease and drive the
    next one, an oscillation.) The loop plans with :class:`~controller.base_load.BaseLoadEstimate`
    instead; this raw estimate serves a decision made without one.
    """
    return node_load_a(
        snapshot.meter,
        # A charger that is offline is not in the problem: its draw stays in the base load.
        [s for s in snapshot.sessions if s.charger_id in snapshot.booted],
        config,
        lambda s: s.draw_at_meter_a,
    )


RunState = tuple[bool, float]
"""Whether a session was last given current (True) or paused, and since when."""


def _run_times(
    session: SessionView, run_state: Mapping[str, RunState], now: float
) -> tuple[float | None, float | None]:
    """(running_for_s, paused_for_s) for the rotation of paused sessions."""
    state = run_state.get(session.key)
    if state is None:
        return None, max(now - session.started_at, 0.0)  # a new car waits from plug-in
    running, since = state
    elapsed_s = max(now - since, 0.0)
    return (elapsed_s, None) if running else (None, elapsed_s)


def _needs(
    session: SessionView, wall_now_s: float | None
) -> tuple[float | None, float | None, float | None, float | None]:
    """(departure_s, energy_wh still open, weight, EV max) from the session's needs."""
    needs = session.needs
    if needs is None:
        return None, None, None, None
    departure_s = None
    if needs.departure_at is not None and wall_now_s is not None:
        departure_s = needs.departure_at - wall_now_s
    energy_wh = None
    if needs.energy_wh is not None:
        energy_wh = max(needs.energy_wh - session.delivered_since_needs_wh, 0.0)
    return departure_s, energy_wh, needs.priority, needs.ev_max_a


def _on_way_wh(session: SessionView, phases: int, response_s: float, volts: float) -> float:
    """Energy a car takes before a setpoint sent now reaches it (``response_s``, its
    charger's learned response time): its draw that long, and, when it draws less than its
    minimum (stopped), the least a restart would give it before a cut could stop it again.

    Counted as still needed, a car told to stop when its need was met took its response
    time's worth more (2–3 s at 16 A: 6–10 Wh a van on fleet_depot_departures.yaml) and the
    cars after it went short; and a stopped car with a few Wh left was restarted at once,
    cutting a car that needed far more (the minimum term)."""
    drawn_a = sum(a or 0.0 for a in session.measured_a or ())
    return max(drawn_a, IEC_61851_MIN_CURRENT_A * phases) * volts * response_s / 3600.0


def _demand(
    session: SessionView,
    config: HeadroomConfig,
    cap_a: float | None,
    run_times: tuple[float | None, float | None] = (None, None),
    wall_now_s: float | None = None,
    held_a: Mapping[str, float] | None = None,
    response_s: float = 0.0,
) -> SessionDemand:
    charger = config.charger(session.charger_id)
    rating_a = charger.max_current_a if charger else config.site.failsafe_current_a
    charger_phases = session.belief.phases or tuple(range(charger.phases if charger else 3))
    told = session.needs
    if session.belief.phases is None and told is not None and told.phases is not None:
        # Until the car's draw shows its phases, the station's word (a single-phase car
        # draws on the charger's L1, two phases on L1 and L2).
        charger_phases = charger_phases[: told.phases]
    max_a = rating_a
    if told is not None and told.cable_max_a is not None:
        max_a = min(max_a, told.cable_max_a)
    if session.belief.ev_max_a is not None:
        max_a = min(max_a, session.belief.ev_max_a)
    if cap_a is not None:
        max_a = min(max_a, cap_a)
    if session.external_limit_a is not None:  # set by others (2.0.1 NotifyChargingLimit)
        max_a = min(max_a, max(session.external_limit_a, 0.0))
    departure_s, energy_wh, priority, ev_max_a = _needs(session, wall_now_s)
    if energy_wh is not None and response_s > 0.0:
        on_way = _on_way_wh(session, len(charger_phases), response_s, config.site.voltage_v)
        energy_wh = max(energy_wh - on_way, 0.0)
    if ev_max_a is not None:
        max_a = min(max_a, ev_max_a)
    weight = charger.priority if charger else 1.0
    return SessionDemand(
        connector_id=session.key,
        node=session.charger_id if charger else config.site.id,
        phases=site_phases(config, session.charger_id, charger_phases),
        max_current_a=max_a,
        weight=priority if priority is not None else weight,
        running_for_s=run_times[0],
        paused_for_s=run_times[1],
        departure_s=departure_s,
        energy_wh=energy_wh,
        held_a=(held_a or {}).get(session.key),
    )


def build_problem(
    snapshot: SiteSnapshot,
    config: HeadroomConfig,
    base_a: tuple[float, float, float],
    caps_a: Mapping[str, float] | None = None,
    demand_cap_w: float | None = None,
    run_state: Mapping[str, RunState] | None = None,
    wall_now_s: float | None = None,
    group_base_a: Mapping[str, Phases] | None = None,
    held_a: Mapping[str, float] | None = None,
    response_s: Mapping[str, float] | None = None,
) -> AllocationProblem:
    """The site as a limit tree with one demand per running session.

    ``group_base_a`` is the base load of each group that has a meter of its own;
    ``held_a`` what each session's charger accepted last (``deadline`` keeps to it
    among equal plans); ``response_s`` each charger's learned response time (a car's
    draw for that long is not counted in the energy it still needs).
    With a demand-charge target, a ``demand window`` node between the site and the
    chargers carries the average power still allowed in the billing window. With
    the wall-clock time (UNIX s), departures become seconds from now and the
    ``deadline`` section becomes the plan's horizon (:mod:`controller.tariff`).
    """
    site = config.site
    nodes = [
        LimitNode(
            id=site.id,
            max_current_a=site.max_current_a,
            max_power_w=site.max_power_w,
            margin_a=site.safety_margin_a,
            base_load_a=base_a,
            label="site",
        )
    ]
    parent = site.id
    if demand_cap_w is not None:
        parent = f"{site.id}/demand"
        nodes.append(
            LimitNode(
                id=parent,
                parent=site.id,
                max_power_w=demand_cap_w,
                margin_a=site.safety_margin_a,
                base_load_a=base_a,
                label="demand window",
            )
        )
    for group in config.group_order():
        nodes.append(
            LimitNode(
                id=group.id,
                parent=group.parent or parent,
                max_current_a=group.max_current_a,
                max_power_w=None if group.max_power_kw is None else group.max_power_kw * 1000,
                margin_a=group.safety_margin_a,
                base_load_a=(group_base_a or {}).get(group.id, (0.0, 0.0, 0.0)),
                label=group.id,
            )
        )
    nodes += _charger_nodes(config, parent, snapshot.charger_limits_a)
    caps, runs, held, lead = caps_a or {}, run_state or {}, held_a or {}, response_s or {}
    sessions = tuple(
        _demand(
            s,
            config,
            caps.get(s.key),
            _run_times(s, runs, snapshot.at),
            wall_now_s,
            held,
            lead.get(s.charger_id, 0.0),
        )
        for s in snapshot.sessions
    )
    control = config.control
    # Only deadline reads the horizon: the other policies' ticks skip pricing the slots.
    planning = wall_now_s is not None and control.policy == "deadline"
    plan = horizon(config.deadline, wall_now_s or 0.0) if planning else Horizon()
    return AllocationProblem(
        tuple(nodes), sessions, site.voltage_v, control.min_run_s, control.min_pause_s, plan
    )


_Kept = tuple["weakref.ref[HeadroomConfig]", str, dict[str, float], list[LimitNode]]
_charger_nodes_kept: dict[int, _Kept] = {}
"""Charger nodes per live config (one per site in a process), by the config's id; an
entry leaves with its config (a replaced config's thousand nodes do not outlive it)."""


def _charger_nodes(
    config: HeadroomConfig, parent: str, external: Mapping[str, float]
) -> list[LimitNode]:
    """One node per charger under ``parent``; ``external``: whole-charger limits others set
    (the sum obeys). Built once per config, parent and limits (a thousand nodes a decision
    at depot scale, nearly always the same); each site of a process keeps its own."""
    kept = _charger_nodes_kept.get(id(config))
    if kept is not None and kept[0]() is config and kept[1] == parent and kept[2] == external:
        return kept[3]
    nodes = [
        LimitNode(
            id=c.id,
            parent=c.group or parent,
            max_current_a=min(c.max_current_a, max(external.get(c.id, c.max_current_a), 0.0)),
            label=c.id,
        )
        for c in config.chargers
    ]
    if kept is None or kept[0]() is not config:
        weakref.finalize(config, _charger_nodes_kept.pop, id(config), None)
    _charger_nodes_kept[id(config)] = (weakref.ref(config), parent, dict(external), nodes)
    return nodes


def failsafe_allocation(problem: AllocationProblem, current_a: float, why: str) -> Allocation:
    """Every session at the fail-safe current (0 where its maximum is below it)."""
    return Allocation(
        {
            s.connector_id: ConnectorAllocation(
                s.connector_id,
                current_a if current_a <= s.max_current_a else 0.0,
                f"fail-safe: {why}",
            )
            for s in problem.sessions
        }
    )


def decide(
    snapshot: SiteSnapshot,
    config: HeadroomConfig,
    policy: Policy,
    held_a: Mapping[str, float],
    base_a: Phases | None = None,
    demand_cap_w: float | None = None,
    noncompliant: frozenset[str] | Mapping[str, str] = frozenset(),
    run_state: Mapping[str, RunState] | None = None,
    wall_now_s: float | None = None,
    group_base_a: Mapping[str, Phases] | None = None,
    response_s: Mapping[str, float] | None = None,
) -> Decision:
    """One decision: trust each meter as far as it deserves, solve, check, and target.

    ``group_base_a`` is the base load of each metered group (the loop passes the
    smoothed ones); without it the raw estimates from this snapshot are used. A
    session below a doubtful group meter is held, then fail-safe, like every session
    is when the site meter is doubtful.

    ``base_a`` is the base load to plan with (the loop passes the smoothed one);
    without it the raw estimate from this snapshot is used. ``demand_cap_w`` is the
    average power the demand-charge window still allows, if a target is set.
    ``response_s`` is each charger's learned response time (``build_problem``).
    ``noncompliant`` sessions do not follow their setpoints: their charger's full
    rating is reserved on their phases and they are told the fail-safe current (a
    mapping gives the reason for each, shown as the target's reason).
    ``wall_now_s`` (UNIX s) lets departures and the ``deadline`` horizon into the problem.
    """
    mode, why = meter_mode(snapshot, config)
    if mode is Mode.FAILSAFE:
        base: Phases = (0.0, 0.0, 0.0)
    else:
        base = base_a if base_a is not None else base_load_a(snapshot, config)
    # Sessions restored after a restart that no charger has confirmed: out of the problem,
    # their worst case reserved, their last setpoint re-asserted (controller/restored.py).
    unconfirmed = tuple(s for s in snapshot.sessions if s.restored is not None)
    # Only a booted charger can be commanded; a session on a charger that is away keeps
    # its last lease or falls back to its fail-safe, and its draw stays in the base load.
    snapshot = replace(
        snapshot,
        sessions=tuple(
            s for s in snapshot.sessions if s.charger_id in snapshot.booted and s.restored is None
        ),
    )
    if mode is not Mode.FAILSAFE:  # room for the building to reach its declared peak
        base = _at_least(base, config.site.building_peak)
    # A session whose charger holds no limit we can count on is planned at its rating like
    # one that overdraws; an untrusted charger's rating is reserved while it is idle too.
    loose = unbounded(snapshot, held_a)
    if loose:
        why_of = dict(noncompliant) if isinstance(noncompliant, Mapping) else {}
        noncompliant = {k: why_of.get(k, OVERDRAWS) for k in noncompliant} | loose
    base, ignored = reserve_noncompliant(snapshot, config, base, frozenset(noncompliant))
    if snapshot.untrusted and mode is not Mode.FAILSAFE:
        base = reserve_idle(snapshot, config, base, {s.charger_id for s in ignored.values()})
    all_sessions = {s.key: s for s in snapshot.sessions if s.key not in ignored}
    modes = group_modes(snapshot.meters, config, snapshot.at)
    by_session = session_modes(snapshot.sessions, config, modes)
    failsafe_a = config.site.failsafe_current_a
    if group_base_a is None:
        group_base_a = group_loads_a(snapshot.meters, snapshot.sessions, snapshot.booted, config)
    # In fail-safe the allocation is the one the config proved safe, not a solved one:
    # no measured base load enters it, the groups' no more than the site's.
    groups_a = dict(group_base_a) if mode is not Mode.FAILSAFE else {}
    if mode is not Mode.FAILSAFE:
        # Below a group in fail-safe, sessions get the fail-safe current and that
        # current is reserved on every node above them: the rest is solved around it.
        failsafe_keys = {
            k for k, m in by_session.items() if m[0] is Mode.FAILSAFE and k in all_sessions
        }
        base, groups_a = reserve_failsafe(
            snapshot, config, base, groups_a, failsafe_keys, failsafe_a
        )
        base, groups_a = reserve_unconfirmed(unconfirmed, config, base, groups_a, failsafe_a)
    snapshot = replace(
        snapshot,
        sessions=tuple(
            s
            for s in snapshot.sessions
            if s.key not in ignored
            and (mode is Mode.FAILSAFE or by_session[s.key][0] is not Mode.FAILSAFE)
        ),
    )
    failsafe_sessions = {
        k: s
        for k, s in all_sessions.items()
        if mode is not Mode.FAILSAFE and by_session[k][0] is Mode.FAILSAFE
    }
    caps = None
    if mode is Mode.HOLD:
        caps = {s.key: held_a.get(s.key, failsafe_a) for s in snapshot.sessions}
    elif mode is Mode.NORMAL:
        caps = {
            s.key: held_a.get(s.key, failsafe_a)
            for s in snapshot.sessions
            if by_session[s.key][0] is Mode.HOLD
        }
    problem = build_problem(
        snapshot,
        config,
        base,
        caps,
        demand_cap_w,
        run_state,
        wall_now_s=wall_now_s,
        group_base_a=groups_a,
        held_a=held_a,
        response_s=response_s,
    )
    rejected: tuple[str, ...] = ()
    if mode is Mode.FAILSAFE:
        allocation = failsafe_allocation(problem, failsafe_a, why)
    else:
        allocation = policy(problem)
        rejected = tuple(violations(problem, allocation))
        if rejected:
            mode, why = Mode.FAILSAFE, "policy answer broke an invariant"
            allocation = failsafe_allocation(problem, failsafe_a, why)
    by_key = {s.key: s for s in snapshot.sessions}
    targets = {
        key: Target(
            s.charger_id,
            s.connector_id,
            s.transaction_id,
            entry.current_a,
            entry.reason,
            s.started_at,
        )
        for key, entry in allocation.connectors.items()
        if (s := by_key.get(key)) is not None
    }
    for key, session in ignored.items():
        why = OVERDRAWS
        if isinstance(noncompliant, Mapping):
            why = noncompliant.get(key, OVERDRAWS)
        targets[key] = Target(
            session.charger_id,
            session.connector_id,
            session.transaction_id,
            failsafe_a,
            f"non-compliant: {why}; its rating is reserved",
            session.started_at,
        )
    for key, session in failsafe_sessions.items():  # out of the problem: told here
        if key not in targets:
            targets[key] = Target(
                session.charger_id,
                session.connector_id,
                session.transaction_id,
                failsafe_a,
                f"fail-safe: {by_session[key][1]}",
                session.started_at,
            )
    for key, (s, (m, _)) in _booted_modes(unconfirmed, snapshot.booted, config, modes).items():
        failsafe = Mode.FAILSAFE in (mode, m)
        limit_a = restored_target_a(s.restored or Restored(), failsafe_a, snapshot.at, failsafe)
        reason = "restored from the state store, not yet confirmed by its charger"
        # Started "now" for the profile ladder: a refusal of a TxProfile for a transaction
        # the charger may not know (yet) says nothing about the charger (controller/fallback.py).
        targets[key] = Target(
            s.charger_id, s.connector_id, s.transaction_id, limit_a, reason, snapshot.at
        )
    return Decision(snapshot.at, mode, why, base, problem, allocation, targets, rejected, modes)


def _at_least(base: Phases, floor: Phases) -> Phases:
    return (max(base[0], floor[0]), max(base[1], floor[1]), max(base[2], floor[2]))


def _booted_modes(
    sessions: tuple[SessionView, ...],
    booted: frozenset[str],
    config: HeadroomConfig,
    modes: Mapping[str, NodeMode],
) -> dict[str, tuple[SessionView, NodeMode]]:
    """The sessions whose charger is booted, with the mode of the groups above each."""
    commandable = [s for s in sessions if s.charger_id in booted]
    by_key = session_modes(commandable, config, modes)
    return {s.key: (s, by_key[s.key]) for s in commandable}
