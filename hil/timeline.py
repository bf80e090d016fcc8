"""A scenario's timeline as a flat, time-ordered list of actions. Pure.

A staggered arrival over ``chargers: all`` becomes one arrival per charger,
an arrival with a ``departure_s`` adds its departure, and every action says
which charger it touches (so the runner can keep one charger's actions in
order while others run in parallel) and how the report labels it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hil.scenario import (
    Arrive,
    BaseLoadChange,
    ChargerConnection,
    ControllerRestart,
    Depart,
    LimitChange,
    MeterFault,
    Scenario,
)


@dataclass(frozen=True, slots=True)
class Action:
    """One thing the runner does at ``at_s``; ``charger_id`` is empty for site-wide ones."""

    at_s: float
    kind: str  # arrive, depart, base_load, meter_fault, charger_offline, charger_online, limit,
    # controller_restart
    label: str
    charger_id: str = ""
    connector_id: int = 1
    ev_model: str = ""
    soc: float | None = None
    target_soc: float = 1.0
    departure_s: float | None = None
    scale: float | None = None
    current_a: tuple[float, float, float] | None = None
    mode: str = ""
    delay_s: float = 0.0
    reboot: bool = False
    limit_a: float | None = None
    limit_kw: float | None = None


def charger_ids(event: Arrive | Depart, scenario: Scenario) -> list[str]:
    """The chargers an arrival or departure names, in order."""
    if event.charger is not None:
        return [event.charger]
    if event.chargers == "all" or event.chargers is None:
        return [c.settings.id for c in scenario.chargers()]
    return list(event.chargers)


def _arrivals(event: Arrive, scenario: Scenario) -> list[Action]:
    models = [event.ev] if isinstance(event.ev, str) else event.ev
    actions = []
    for k, charger_id in enumerate(charger_ids(event, scenario)):
        at_s = event.at_s + k * event.stagger_s
        model = models[k % len(models)]
        actions.append(
            Action(
                at_s,
                "arrive",
                f"{model} arrives at {charger_id}",
                charger_id,
                event.connector,
                ev_model=model,
                soc=event.soc,
                target_soc=event.target_soc,
                departure_s=event.departure_s,
            )
        )
        if event.departure_s is not None and event.departure_s < scenario.duration_s:
            actions.append(_departure(event.departure_s, charger_id, event.connector))
    return actions


def _departure(at_s: float, charger_id: str, connector_id: int) -> Action:
    return Action(at_s, "depart", f"EV leaves {charger_id}", charger_id, connector_id)


def _site_action(event: BaseLoadChange | MeterFault | ChargerConnection) -> Action:
    if isinstance(event, BaseLoadChange):
        what = f"×{event.scale:g}" if event.scale is not None else f"{event.current_a} A"
        return Action(
            event.at_s,
            "base_load",
            f"base load {what}",
            scale=event.scale,
            current_a=event.current_a,
        )
    if isinstance(event, MeterFault):
        label = "meter recovers" if event.mode == "none" else f"meter fault: {event.mode}"
        return Action(event.at_s, "meter_fault", label, mode=event.mode, delay_s=event.delay_s)
    state = "offline" if event.event == "charger_offline" else "back online"
    if event.reboot:
        state += " (rebooted)"
    label = f"{event.charger} {state}"
    return Action(event.at_s, event.event, label, event.charger, reboot=event.reboot)


def _limit_change(event: LimitChange) -> Action:
    given = [f"{event.max_current_a:g} A"] if event.max_current_a is not None else []
    given += [f"{event.max_power_kw:g} kW"] if event.max_power_kw is not None else []
    return Action(
        event.at_s,
        "limit",
        f"limit set to {' / '.join(given)}",
        limit_a=event.max_current_a,
        limit_kw=event.max_power_kw,
    )


def expand(scenario: Scenario) -> list[Action]:
    """Every action of the run, in time order (stable for actions at the same instant)."""
    actions: list[Action] = []
    for event in scenario.timeline:
        if isinstance(event, Arrive):
            actions += _arrivals(event, scenario)
        elif isinstance(event, Depart):
            actions += [
                _departure(event.at_s, cid, event.connector) for cid in charger_ids(event, scenario)
            ]
        elif isinstance(event, LimitChange):
            actions.append(_limit_change(event))
        elif isinstance(event, ControllerRestart):
            label = f"controller restarts ({event.down_s:g} s down)"
            actions.append(Action(event.at_s, event.event, label, delay_s=event.down_s))
        else:
            actions.append(_site_action(event))
    return sorted(actions, key=lambda a: a.at_s)
