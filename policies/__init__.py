"""Allocation policies: pure functions from an AllocationProblem to an Allocation.

Importing this package never imports asyncio, websockets, ocpp, pymodbus or
aiomqtt: policies decide, they do no I/O. The registry maps the names the
config uses to the functions: ``equal_share`` (the baseline), ``weighted_fair``
(weighted max-min fairness), ``optimal`` (a MILP with a time limit; the one
policy that reads a clock) and ``deadline`` (a horizon plan for cars with a
departure time and an energy need; weighted-fair for the rest).
``policies.solve_cli`` is ``headroom solve``.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.deadline import deadline
from policies.equal_share import equal_share
from policies.optimal import optimal
from policies.problem import (
    Allocation,
    AllocationProblem,
    ConnectorAllocation,
    ConnectorTable,
    Horizon,
    LimitNode,
    SessionDemand,
    Unserved,
)
from policies.weighted_fair import weighted_fair

Policy = Callable[[AllocationProblem], Allocation]

POLICIES: dict[str, Policy] = {
    "deadline": deadline,
    "equal_share": equal_share,
    "optimal": optimal,
    "weighted_fair": weighted_fair,
}


def get_policy(name: str) -> Policy:
    """The policy registered under ``name``; KeyError names the known ones."""
    try:
        return POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise KeyError(f"unknown policy {name!r}; known policies: {known}") from None


__all__ = [
    "POLICIES",
    "Allocation",
    "AllocationProblem",
    "ConnectorAllocation",
    "ConnectorTable",
    "Horizon",
    "LimitNode",
    "Policy",
    "SessionDemand",
    "Unserved",
    "get_policy",
]
