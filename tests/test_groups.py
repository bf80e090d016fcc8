"""Groups (feeders, panels) in the limit tree: validated in the config, honoured by the loop."""

from __future__ import annotations

from typing import Any

import pytest

from controller.config import parse_config
from controller.decide import decide
from controller.errors import ConfigError
from policies import get_policy
from policies.verify import violations
from tests.helpers import session, snapshot


def config_with(groups: list[dict[str, Any]], chargers: list[dict[str, Any]]) -> dict[str, Any]:
    """A site of 100 A with the given groups and chargers."""
    return {
        "site": {"id": "site", "max_current_a": 100, "failsafe_current_a": 6},
        "meter": {"host": "127.0.0.1"},
        "groups": groups,
        "chargers": chargers,
    }


def test_a_feeder_limit_binds_and_is_named() -> None:
    """Two chargers on a 40 A feeder share 40 A on a 100 A site; the reason names the feeder."""
    config = parse_config(
        config_with(
            [{"id": "feeder-a", "max_current_a": 40}],
            [
                {"id": "cp-0", "group": "feeder-a"},
                {"id": "cp-1", "group": "feeder-a"},
                {"id": "cp-2"},
            ],
        )
    )
    snap = snapshot([session(0), session(1), session(2)], meter_a=(10.0, 10.0, 10.0))
    decision = decide(snap, config, get_policy("weighted_fair"), {})
    assert decision.targets["cp-0/1"].limit_a == 20.0
    assert decision.targets["cp-0/1"].reason.startswith("feeder-a L")
    assert decision.targets["cp-2/1"].limit_a == 32.0
    assert violations(decision.problem, decision.allocation) == []


def test_nested_groups_are_ordered_parent_first() -> None:
    """A panel inside a feeder: the problem lists the feeder before the panel."""
    config = parse_config(
        config_with(
            [
                {"id": "panel", "parent": "feeder", "max_current_a": 20},
                {"id": "feeder", "max_current_a": 60},
            ],
            [{"id": "cp-0", "group": "panel"}],
        )
    )
    assert [g.id for g in config.group_order()] == ["feeder", "panel"]


@pytest.mark.parametrize(
    ("groups", "chargers", "expected"),
    [
        ([{"id": "f", "parent": "nope"}], [{"id": "cp-0"}], "groups[0].parent: no group 'nope'"),
        ([], [{"id": "cp-0", "group": "f"}], "chargers[0].group: no group 'f'"),
        (
            [{"id": "a", "parent": "b"}, {"id": "b", "parent": "a"}],
            [{"id": "cp-0"}],
            "cycle of parents",
        ),
        ([{"id": "cp-0"}], [{"id": "cp-0"}], "used twice"),
        (
            [{"id": "f", "max_current_a": 10}],
            [{"id": "cp-0", "group": "f"}, {"id": "cp-1", "group": "f"}],
            "under group 'f' add up to 12.0 A",
        ),
    ],
)
def test_broken_groups_are_named(
    groups: list[dict[str, Any]], chargers: list[dict[str, Any]], expected: str
) -> None:
    """Unknown parents, unknown groups, cycles, clashing ids and fail-safes over a group's
    limit are each refused with the key that is wrong."""
    with pytest.raises(ConfigError) as info:
        parse_config(config_with(groups, chargers))
    assert expected in "\n".join(info.value.problems)
