"""``headroom solve``: one allocation problem from a JSON file, solved and explained.

This module owns the problem's JSON format (docs/problem-format.md) and the
command's output. It reads the file, checks every field with an error that
names it (``sessions[2].max_current_a: expected a number, got "32A"``),
runs one policy, and prints the allocation, each connector's reason, the
invariant check and the solve time as JSON.

Exit status: 0 when the answer keeps every invariant, 1 when it breaks one
(the answer is still printed, with the violations), 2 when the command line
or the file is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from policies import POLICIES, Allocation, AllocationProblem, Horizon, LimitNode, SessionDemand
from policies.optimal import DEFAULT_TIME_LIMIT_S, optimal
from policies.problem import (
    DEFAULT_MIN_PAUSE_S,
    DEFAULT_MIN_RUN_S,
    DEFAULT_SLOT_S,
    DEFAULT_SLOTS,
    IEC_61851_MIN_CURRENT_A,
)
from policies.verify import violations

T = TypeVar("T")

_PHASE_NAMES = {"L1": 0, "L2": 1, "L3": 2}


class ProblemFileError(ValueError):
    """The problem file is not valid JSON or a field is wrong; the message names the field."""


def _number(value: object, where: str, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProblemFileError(f"{where}: expected a number, got {json.dumps(value)}")
    return float(value)


def _text(value: object, where: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ProblemFileError(f"{where}: expected a non-empty string, got {json.dumps(value)}")
    return value


def _fields(record: object, where: str, known: set[str], required: set[str]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise ProblemFileError(f"{where}: expected an object, got {json.dumps(record)}")
    unknown = sorted(set(record) - known)
    if unknown:
        raise ProblemFileError(
            f"{where}.{unknown[0]}: unknown field (known: {', '.join(sorted(known))})"
        )
    missing = sorted(required - set(record))
    if missing:
        raise ProblemFileError(f"{where}.{missing[0]}: required field is missing")
    return record


def _phase(value: object, where: str) -> int:
    if isinstance(value, str) and value in _PHASE_NAMES:
        return _PHASE_NAMES[value]
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2:
        return value
    raise ProblemFileError(
        f'{where}: expected 0, 1, 2 or "L1", "L2", "L3", got {json.dumps(value)}'
    )


def _node(record: object, where: str) -> LimitNode:
    known = {"id", "parent", "max_current_a", "max_power_w", "margin_a", "base_load_a", "label"}
    fields = _fields(record, where, known, {"id"})
    base = fields.get("base_load_a", [0.0, 0.0, 0.0])
    if not isinstance(base, list) or len(base) != 3:
        raise ProblemFileError(
            f"{where}.base_load_a: expected three numbers (L1, L2, L3), got {json.dumps(base)}"
        )
    l1, l2, l3 = (_number(v, f"{where}.base_load_a[{i}]") or 0.0 for i, v in enumerate(base))
    return LimitNode(
        id=_text(fields["id"], f"{where}.id") or "",
        parent=_text(fields.get("parent"), f"{where}.parent", optional=True),
        max_current_a=_number(fields.get("max_current_a"), f"{where}.max_current_a", True),
        max_power_w=_number(fields.get("max_power_w"), f"{where}.max_power_w", True),
        margin_a=_number(fields.get("margin_a", 0.0), f"{where}.margin_a") or 0.0,
        base_load_a=(l1, l2, l3),
        label=_text(fields.get("label"), f"{where}.label", optional=True) or "",
    )


def _session(record: object, where: str) -> SessionDemand:
    known = {
        "connector_id", "node", "phases", "max_current_a", "min_current_a", "weight",
        "running_for_s", "paused_for_s", "departure_s", "energy_wh", "held_a",
    }  # fmt: skip
    fields = _fields(record, where, known, {"connector_id", "node"})
    phases = fields.get("phases", [0, 1, 2])
    if not isinstance(phases, list):
        raise ProblemFileError(
            f"{where}.phases: expected a list of site phases, got {json.dumps(phases)}"
        )
    return SessionDemand(
        connector_id=_text(fields["connector_id"], f"{where}.connector_id") or "",
        node=_text(fields["node"], f"{where}.node") or "",
        phases=tuple(_phase(p, f"{where}.phases[{i}]") for i, p in enumerate(phases)),
        max_current_a=_number(fields.get("max_current_a", 32.0), f"{where}.max_current_a") or 0.0,
        min_current_a=_number(
            fields.get("min_current_a", IEC_61851_MIN_CURRENT_A), f"{where}.min_current_a"
        )
        or 0.0,
        weight=_number(fields.get("weight", 1.0), f"{where}.weight") or 0.0,
        running_for_s=_number(fields.get("running_for_s"), f"{where}.running_for_s", True),
        paused_for_s=_number(fields.get("paused_for_s"), f"{where}.paused_for_s", True),
        departure_s=_number(fields.get("departure_s"), f"{where}.departure_s", True),
        energy_wh=_number(fields.get("energy_wh"), f"{where}.energy_wh", True),
        held_a=_number(fields.get("held_a"), f"{where}.held_a", True),
    )


def _numbers(value: object, where: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ProblemFileError(f"{where}: expected a list of numbers, got {json.dumps(value)}")
    return tuple(_number(v, f"{where}[{i}]") or 0.0 for i, v in enumerate(value))


def _phases3(value: object, where: str) -> tuple[float, float, float]:
    numbers = _numbers(value, where)
    if len(numbers) != 3:
        raise ProblemFileError(f"{where}: expected three numbers (L1, L2, L3)")
    return numbers[0], numbers[1], numbers[2]


def _horizon(record: object) -> Horizon:
    known = {"slot_s", "slots", "now_s", "prices", "peak_cap_w", "base_forecast_a"}
    fields = _fields(record, "horizon", known, set())
    slots = _number(fields.get("slots", DEFAULT_SLOTS), "horizon.slots") or 0.0
    if slots < 1 or slots != int(slots):
        raise ProblemFileError(f"horizon.slots: expected a whole number ≥ 1, got {slots:g}")
    slot_s = _number(fields.get("slot_s", DEFAULT_SLOT_S), "horizon.slot_s") or 0.0
    if not slot_s > 0:
        raise ProblemFileError(f"horizon.slot_s: must be more than 0, got {slot_s:g}")
    forecast = fields.get("base_forecast_a", [])
    if not isinstance(forecast, list):
        raise ProblemFileError("horizon.base_forecast_a: expected a list of [L1, L2, L3]")
    return Horizon(
        slot_s=slot_s,
        slots=int(slots),
        now_s=_number(fields.get("now_s", 0.0), "horizon.now_s") or 0.0,
        prices=_numbers(fields.get("prices", []), "horizon.prices"),
        peak_cap_w=_number(fields.get("peak_cap_w"), "horizon.peak_cap_w", True),
        base_forecast_a=tuple(
            _phases3(v, f"horizon.base_forecast_a[{i}]") for i, v in enumerate(forecast)
        ),
    )


def _each(records: object, where: str, read: Callable[[object, str], T]) -> tuple[T, ...]:
    if not isinstance(records, list):
        raise ProblemFileError(f"{where}: expected a list, got {json.dumps(records)}")
    return tuple(read(record, f"{where}[{i}]") for i, record in enumerate(records))


def problem_from_json(document: object) -> AllocationProblem:
    """The problem a parsed JSON document describes; ProblemFileError names a wrong field."""
    known = {"voltage_v", "min_run_s", "min_pause_s", "nodes", "sessions", "horizon"}
    fields = _fields(document, "problem", known, {"nodes", "sessions"})
    return AllocationProblem(
        nodes=_each(fields["nodes"], "nodes", _node),
        sessions=_each(fields["sessions"], "sessions", _session),
        voltage_v=_number(fields.get("voltage_v", 230.0), "voltage_v") or 0.0,
        min_run_s=_number(fields.get("min_run_s", DEFAULT_MIN_RUN_S), "min_run_s") or 0.0,
        min_pause_s=_number(fields.get("min_pause_s", DEFAULT_MIN_PAUSE_S), "min_pause_s") or 0.0,
        horizon=_horizon(fields["horizon"]) if "horizon" in fields else Horizon(),
    )


def read_problem(path: Path) -> AllocationProblem:
    """The problem in a JSON file; ProblemFileError says what is wrong and where."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProblemFileError(f"cannot read it: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ProblemFileError(f"line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return problem_from_json(document)


def report(
    policy: str, answer: Allocation, problem: AllocationProblem, solve_ms: float
) -> dict[str, Any]:
    """The command's output: the allocation with reasons, the invariant check, the time."""
    connectors: Mapping[str, Any] = {
        key: {"current_a": entry.current_a, "reason": entry.reason}
        for key, entry in answer.connectors.items()
    }
    out: dict[str, Any] = {
        "policy": policy,
        "solve_ms": round(solve_ms, 3),
        "connectors": connectors,
        "total_current_a": round(sum(answer.currents_a().values()), 1),
        "violations": violations(problem, answer),
    }
    if answer.unserved:  # only a horizon plan (deadline) reports cars it cannot serve
        out["unserved"] = [
            {
                "connector_id": u.connector_id,
                "short_wh": round(u.short_wh, 1),
                "energy_wh": u.energy_wh,
                "departure_s": u.departure_s,
            }
            for u in answer.unserved
        ]
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headroom solve",
        description="Solve one allocation problem (JSON, see docs/problem-format.md) and "
        "print the allocation and its reasons as JSON.",
    )
    parser.add_argument("problem", type=Path, help="the problem as a JSON file")
    parser.add_argument(
        "--policy",
        default="weighted_fair",
        help=f"one of {', '.join(sorted(POLICIES))} (default: weighted_fair)",
    )
    parser.add_argument(
        "--time-limit-s",
        type=float,
        default=DEFAULT_TIME_LIMIT_S,
        help=f"optimal only: its time limit (default {DEFAULT_TIME_LIMIT_S} s)",
    )
    return parser


def solve_main(argv: list[str]) -> int:
    """Run ``headroom solve`` with ``argv`` (the arguments after ``solve``); the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error
        return int(exc.code or 0)
    if args.policy not in POLICIES:
        known = ", ".join(sorted(POLICIES))
        print(
            f"headroom solve: unknown policy {args.policy!r}; known policies: {known}",
            file=sys.stderr,
        )
        return 2
    try:
        problem = read_problem(args.problem)
    except ProblemFileError as exc:
        print(f"headroom solve: {args.problem}: {exc}", file=sys.stderr)
        return 2
    policy = POLICIES[args.policy]
    if args.policy == "optimal":
        policy = lambda p: optimal(p, args.time_limit_s)  # noqa: E731
    start = time.perf_counter()
    try:
        answer = policy(problem)
    except ValueError as exc:  # a malformed model: duplicate ids, a late parent, ...
        print(f"headroom solve: {args.problem}: {exc}", file=sys.stderr)
        return 2
    solve_ms = (time.perf_counter() - start) * 1e3
    output = report(args.policy, answer, problem, solve_ms)
    print(json.dumps(output, indent=2, ensure_ascii=False))
    return 1 if output["violations"] else 0
