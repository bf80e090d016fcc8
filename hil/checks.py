"""Checks across a scenario's parts, after each part has its shape (pure but for the CSV read).

Each problem is one ``key.path: reason`` line, like the shape errors: a
charger or EV the timeline names that the devices do not have, an event
after the end of the run, a departure before its arrival, a controller
config the controller itself would refuse, a CSV load that cannot be read.
"""

from __future__ import annotations

from pydantic import ValidationError

from controller.config import format_errors
from hil.devices import read_load_csv
from hil.scenario import (
    Arrive,
    BaseLoadChange,
    ChargerConnection,
    Depart,
    MeterFault,
    Scenario,
)
from hil.timeline import charger_ids


def cross_check(scenario: Scenario) -> list[str]:
    """Every problem found across the scenario's parts."""
    return [
        *_controller_problems(scenario),
        *_timeline_problems(scenario),
        *_csv_problems(scenario),
        *_quirk_problems(scenario),
        *real_device_problems(scenario),
    ]


def _controller_problems(scenario: Scenario) -> list[str]:
    """What the controller's own validation says of the embedded config (meter port aside)."""
    try:
        scenario.controller_config(meter_port=1)
    except ValidationError as exc:
        renamed = {"chargers": "devices.chargers", "control.policy": "policy"}
        lines = []
        for line in format_errors(exc):
            line = line.removeprefix("(top level): ")  # its own message names the key
            for old, new in renamed.items():
                if line.startswith(old):
                    line = new + line.removeprefix(old)
                    break
            lines.append(line)
        return lines
    return []


def _timeline_problems(scenario: Scenario) -> list[str]:
    connectors = {c.settings.id: c.settings.connectors for c in scenario.chargers()}
    problems = []
    for i, event in enumerate(scenario.timeline):
        where = f"timeline[{i}]"
        if event.at_s > scenario.duration_s:
            problems.append(f"{where}.at_s: {event.at_s} s is after duration_s")
        if isinstance(event, Arrive | Depart):
            problems += _charger_refs(where, event, connectors)
        if isinstance(event, ChargerConnection) and event.charger not in connectors:
            problems.append(f"{where}.charger: no charger {event.charger!r} in devices.chargers")
        if isinstance(event, Arrive):
            problems += _arrival_problems(where, event, scenario)
    return problems


def _charger_refs(where: str, event: Arrive | Depart, connectors: dict[str, int]) -> list[str]:
    key = "charger" if event.charger is not None else "chargers"
    named = [event.charger] if event.charger is not None else event.chargers
    if named == "all" or named is None:
        named = list(connectors)
    problems = []
    for charger_id in named:
        if charger_id not in connectors:
            problems.append(f"{where}.{key}: no charger {charger_id!r} in devices.chargers")
        elif event.connector > connectors[charger_id]:
            problems.append(
                f"{where}.connector: {charger_id} has {connectors[charger_id]} connector(s)"
            )
    return problems


def _arrival_problems(where: str, event: Arrive, scenario: Scenario) -> list[str]:
    problems = []
    models = [event.ev] if isinstance(event.ev, str) else event.ev
    if not models:
        problems.append(f"{where}.ev: name at least one EV model")
    for name in models:
        if name not in scenario.devices.evs:
            known = ", ".join(sorted(scenario.devices.evs))
            problems.append(f"{where}.ev: no EV model {name!r} in devices.evs (known: {known})")
    last_s = event.at_s + event.stagger_s * (len(charger_ids(event, scenario)) - 1)
    if event.departure_s is not None and event.departure_s <= last_s:
        problems.append(f"{where}.departure_s: must be after the (last) arrival at {last_s:g} s")
    return problems


def _csv_problems(scenario: Scenario) -> list[str]:
    spec = scenario.devices.base_load.csv
    if spec is None:
        return []
    path = scenario.base_dir / spec.path
    try:
        read_load_csv(path)
    except OSError as exc:
        return [f"devices.base_load.csv.path: cannot read {path}: {exc.strerror or exc}"]
    except ValueError as exc:
        return [f"devices.base_load.csv.path: {path}: {exc}"]
    return []


def _quirk_problems(scenario: Scenario) -> list[str]:
    """Quirks the simulated charger does not know."""
    problems = []
    for i, spec in enumerate(scenario.devices.chargers):
        if not spec.quirks:
            continue
        try:
            from hil.quirks import Quirks

            Quirks.from_mapping(dict(spec.quirks))
        except (ImportError, TypeError, ValueError) as exc:
            problems.append(f"devices.chargers[{i}].quirks: {exc}")
    return problems


def real_device_problems(scenario: Scenario) -> list[str]:
    """What a scenario cannot do with the real devices it names."""
    devices = scenario.devices
    real = set(devices.real_chargers())
    problems = []
    if scenario.time_scale != 1.0 and scenario.real_devices():
        named = ", ".join(scenario.real_devices())
        problems.append(f"time_scale: real devices ({named}) run in real time: use 1.0")
    if real and devices.ocpp.port == 0:
        problems.append(
            "devices.ocpp.port: real chargers need a fixed port to connect to (0 picks any)"
        )
    if devices.meter is not None:
        simulated = [c.settings.id for c in scenario.chargers() if c.settings.id not in real]
        if simulated:
            problems.append(
                f"devices.meter: a real meter sees no simulated charger's draw "
                f"({', '.join(simulated[:3])}{', …' if len(simulated) > 3 else ''}): make "
                "every charger real, or leave the meter simulated"
            )
        if "base_load" in devices.model_fields_set:
            problems.append("devices.base_load: the real meter measures the building: remove it")
    for i, event in enumerate(scenario.timeline):
        problems += _real_event_problems(f"timeline[{i}]", event, scenario, real)
    return problems


def _real_event_problems(
    where: str, event: object, scenario: Scenario, real: set[str]
) -> list[str]:
    if isinstance(event, MeterFault | BaseLoadChange) and scenario.devices.meter is not None:
        kind = "meter_fault" if isinstance(event, MeterFault) else "base_load"
        return [f"{where}: {kind} acts on the simulated meter and site; devices.meter is real"]
    if isinstance(event, Arrive | Depart):
        named = charger_ids(event, scenario)
        acted = "arrive" if isinstance(event, Arrive) else "depart"
    elif isinstance(event, ChargerConnection):
        named, acted = [event.charger], event.event
    else:
        return []
    hit = [c for c in named if c in real]
    if not hit:
        return []
    return [
        f"{where}: {acted} acts on a simulated charger; {', '.join(hit)} "
        f"{'is a real charger' if len(hit) == 1 else 'are real chargers'} (real: true)"
    ]
