"""From a frozen site snapshot to the current each session may draw. Pure.

This module owns two decisions that sit between the site state and the
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

The problem the policy solves, the site as a tree of limit nodes and one demand
per session, is built by :func:`controller.site_problem.build_problem`.

The policy's answer is checked against the invariants before it is used; a
broken answer is replaced by the fail-safe allocation and reported.
"""

from __future__ import annotations

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
from controller.reserve import reserve_failsafe, reserve_noncompliant, reserve_unconfirmed
from controller.site_problem import RunState, build_problem
from controller.snapshot import SessionView, SiteSnapshot
from controller.targets import OVERDRAWS, Target, allocated, below_failsafe
from controller.targets import noncompliant as noncompliant_targets
from controller.targets import restored as restored_targets
from controller.untrusted import reserve_idle, unbounded
from policies import Allocation, AllocationProblem, ConnectorAllocation, Policy
from policies.verify import violations

Phases = tuple[float, float, float]

__all__ = ["Decision", "Mode", "Phases", "base_load_a", "decide", "meter_mode"]


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
    flagged = (
        dict(noncompliant)
        if isinstance(noncompliant, Mapping)
        else dict.fromkeys(noncompliant, OVERDRAWS)
    ) | unbounded(snapshot, held_a)
    base, ignored = reserve_noncompliant(snapshot, config, base, frozenset(flagged))
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
    booted = _booted_modes(unconfirmed, snapshot.booted, config, modes)
    # A session below a fail-safe group is told so unless the policy answered for it.
    targets = (
        below_failsafe(
            failsafe_sessions, {k: by_session[k][1] for k in failsafe_sessions}, failsafe_a
        )
        | allocated(snapshot.sessions, allocation)
        | noncompliant_targets(ignored, flagged, failsafe_a)
        | restored_targets(
            {k: s for k, (s, _) in booted.items()},
            {k: Mode.FAILSAFE in (mode, m) for k, (_, (m, _)) in booted.items()},
            failsafe_a,
            snapshot.at,
        )
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
