"""Since when each session has been running or paused, for the rotation of paused cars.

The loop keeps the result across decisions; :func:`controller.decide.decide` turns it
into running and paused times for the policy, so paused cars take turns. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from controller.decide import Decision
from controller.site_problem import RunState


def next_run_state(
    previous: Mapping[str, RunState], decision: Decision, now: float
) -> dict[str, RunState]:
    """Since when each session has been running (given current) or paused (0 A)."""
    state: dict[str, RunState] = {}
    for key, target in decision.targets.items():
        running = target.limit_a > 0
        before = previous.get(key)
        state[key] = before if before is not None and before[0] is running else (running, now)
    return state
