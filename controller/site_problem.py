"""The problem the policy solves, from a frozen site snapshot. Pure.

:func:`build_problem`: the site as a limit tree (:mod:`controller.limit_tree`)
and one demand per session, with the phases and maximum learned from the car.
A limit set by others on one EVSE (OCPP 2.0.1 NotifyChargingLimit) lowers the
session's maximum.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.config import HeadroomConfig
from controller.limit_tree import limit_tree
from controller.node_modes import Phases
from controller.reserve import site_phases
from controller.snapshot import SessionView, SiteSnapshot
from controller.tariff import horizon
from policies import AllocationProblem
from policies.problem import IEC_61851_MIN_CURRENT_A, Horizon, SessionDemand

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
    nodes = limit_tree(config, base_a, demand_cap_w, group_base_a, snapshot.charger_limits_a)
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
