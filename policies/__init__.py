"""Allocation policies: pure functions from an AllocationProblem to an Allocation.

Importing this package never imports asyncio, websockets, ocpp, pymodbus or
aiomqtt: policies decide, they do no I/O. The registry maps the names the
config uses to the functions: ``equal_share`` (the baseline), ``weighted_fair``
(weighted max-min fairness) and ``optimal`` (a MILP with a time limit; the one
policy that reads a clock). ``policies.solve_cli`` is ``headroom solve``.
"""

from __future__ import annotations

from collections.abc import Callable

from policies.equal_share import equal_share
from policies.optimal import optimal
from policies.problem import (
    Allocation,
    AllocationProblem,
    ConnectorAllocation,
    ConnectorTable,
    LimitNode,
    SessionDemand,
)
from policies.weighted_fair import weighted_fair

Policy = Callable[[AllocationProblem], Allocation]

POLICIES: dict[str, Policy] = {
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
    "LimitNode",
    "Policy",
    "SessionDemand",
    "get_policy",
]
