"""Room for cars still ramping or still coming down: no headroom handed out twice. Pure.

The policy shares the limit among the *targets*; the cars follow their setpoints
seconds later. Between the two, what a car may draw is not its target:

* a car that was given an increase and has not drawn it yet may draw it any
  moment: it counts at its **setpoint**, not at its measured draw;
* a car told to come down that has not followed yet still draws its old
  current: it counts at its **measured draw**, or what it drew when it was
  told, if more (with ``increases_wait_for: followed``);
* a car told to come down before it reached an earlier, higher setpoint may
  still draw that one first (a car follows each offer late): it counts at
  **each setpoint it was told** since it last followed, each until its response
  time after it was replaced (with ``increases_wait_for: followed``; six cars
  arriving a second apart took a 100 A site 28 A over its limit without it:
  the first ones, offered 32 A and cut before they drew it, drew it afterwards
  while the newcomers took their shares);
* a car whose increase is in flight counts at that increase; a session without
  an accepted setpoint runs on its fail-safe default (or what it draws, if more).

Each counts so until it has followed its change or its response time has passed
(:mod:`controller.response`; a car that never follows is the compliance check's
business). :func:`fit_increases` lets an increase go only as far as that count
leaves room on every node and phase above the car (the base loads of the
decision's problem, which already hold what is reserved for sessions outside
it); the rest waits for the next decision, which the loop takes as soon as a
car is seen to follow. So an increase never goes into room that a decrease has
freed on paper but not yet in the wires (the handover that put the
``fleet_depot_departures`` scenario over its limit), nor into room a ramping car
already holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from controller.dispatch import Change, ChangeKind
from controller.pacing import CURRENT_STEP_A
from policies import AllocationProblem
from policies.problem import LimitNode


def committed_a(
    level_a: float,
    drawn_a: float | None,
    in_flight_a: float | None,
    settling: bool,
    told_a: float = 0.0,
) -> float:
    """What a car may draw now: its setpoint ``level_a``, an increase in flight, and while
    it is ``settling`` (not followed, response time not passed) its measured draw and
    ``told_a``, the most it may draw on its way (:meth:`controller.follow.Pending.most_a`)."""
    value = level_a
    if in_flight_a is not None:
        value = max(value, in_flight_a)
    if settling:
        value = max(value, told_a, drawn_a if drawn_a is not None else 0.0)
    return value


def fit_increases(
    problem: AllocationProblem,
    changes: Sequence[Change],
    committed: Mapping[str, float],
    deadband_a: float,
) -> list[Change]:
    """``changes`` with each increase cut to the room left by ``committed`` currents.

    Increases are fitted in order; each takes its room from the next. One cut to
    no more than the deadband above what the charger holds, or a paused car that
    cannot have its whole target, waits.
    """
    nodes = {n.id: n for n in problem.nodes}
    chains = {s.connector_id: _chain(nodes, s.node) for s in problem.sessions}
    phases = {s.connector_id: tuple(sorted(set(s.phases))) or (0, 1, 2) for s in problem.sessions}
    load = {n.id: [0.0, 0.0, 0.0] for n in problem.nodes}
    for key, chain in chains.items():
        _add(load, chain, phases[key], committed.get(key, 0.0))
    fitted = []
    for change in changes:
        key = change.key
        if change.kind is not ChangeKind.INCREASE or key not in chains:
            fitted.append(change)
            continue
        held_a = committed.get(key, 0.0)
        room_a = min(
            (_room(nodes[n], load[n], phases[key], problem.voltage_v) for n in chains[key]),
            default=float("inf"),
        )
        want_a = change.target.limit_a
        grant_a = want_a if held_a + room_a >= want_a else _floor(held_a + room_a)
        if grant_a < want_a and (change.old_a <= 0.0 or grant_a <= change.old_a + deadband_a):
            continue  # waits: no sub-minimum step for a paused car, no step under the deadband
        if grant_a > held_a:
            _add(load, chains[key], phases[key], grant_a - held_a)
        if grant_a < want_a:
            reason = f"{change.target.reason} (room held by cars still settling)"
            change = replace(change, target=replace(change.target, limit_a=grant_a, reason=reason))
        fitted.append(change)
    return fitted


def _chain(nodes: Mapping[str, LimitNode], node_id: str) -> list[str]:
    """The node and every node above it."""
    chain = []
    while node_id in nodes and node_id not in chain:
        chain.append(node_id)
        node_id = nodes[node_id].parent or ""
    return chain


def _add(load: dict[str, list[float]], chain: list[str], phases: tuple[int, ...], a: float) -> None:
    for node in chain:
        for p in phases:
            load[node][p] += a


def _room(node: LimitNode, load: list[float], phases: tuple[int, ...], voltage_v: float) -> float:
    """The most one more ampere-per-phase on ``phases`` may add under ``node``."""
    room = float("inf")
    if node.max_current_a is not None:
        bound = node.max_current_a - node.margin_a
        room = min(bound - node.base_load_a[p] - load[p] for p in phases)
    if node.max_power_w is not None:
        budget_a = node.max_power_w / voltage_v - 3 * node.margin_a - sum(node.base_load_a)
        room = min(room, (budget_a - sum(load)) / len(phases))
    return room


def _floor(value_a: float) -> float:
    return round(int(max(value_a, 0.0) / CURRENT_STEP_A + 1e-9) * CURRENT_STEP_A, 1)
