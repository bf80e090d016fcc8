"""The limit tree of a site: groups under the site, chargers under groups, and the
fail-safe profiles fitting under every node of it (invariant 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from controller.config.limits import GroupSettings

if TYPE_CHECKING:
    from controller.config.site import HeadroomConfig


def check_groups(config: HeadroomConfig, charger_ids: set[str]) -> None:
    """Groups form a tree under the site; chargers name groups that exist."""
    groups = config.groups
    names = [g.id for g in groups]
    clash = sorted(
        {n for n in names if names.count(n) > 1 or n in charger_ids}
        | ({config.site.id} & set(names))
    )
    if clash:
        raise ValueError(f"groups: id(s) {', '.join(clash)} used twice (site, group, charger)")
    known = set(names)
    for i, group in enumerate(groups):
        if group.parent is not None and group.parent not in known:
            raise ValueError(f"groups[{i}].parent: no group {group.parent!r}")
    for group in groups:  # a cycle never reaches the site
        seen, node = set(), group
        while node.parent is not None:
            if node.id in seen:
                raise ValueError(f"groups: {group.id!r} is inside a cycle of parents")
            seen.add(node.id)
            node = next(g for g in groups if g.id == node.parent)
    for i, charger in enumerate(config.chargers):
        if charger.group is not None and charger.group not in known:
            raise ValueError(f"chargers[{i}].group: no group {charger.group!r}")


def groups_above(groups: Sequence[GroupSettings], group_id: str | None) -> set[str]:
    """The group and every group above it."""
    chain: set[str] = set()
    while group_id is not None and group_id not in chain:
        chain.add(group_id)
        group_id = next((g.parent for g in groups if g.id == group_id), None)
    return chain


def group_order(groups: Sequence[GroupSettings]) -> list[GroupSettings]:
    """Groups with every parent before its children."""
    ordered: list[GroupSettings] = []
    remaining = list(groups)
    while remaining:
        placed = {g.id for g in ordered}
        ready = [g for g in remaining if g.parent is None or g.parent in placed]
        ordered += ready
        remaining = [g for g in remaining if g not in ready]
    return ordered


def chargers_below(config: HeadroomConfig, node: str) -> list[str]:
    """The chargers under ``node`` (the site: all of them)."""
    if node == config.site.id:
        return [c.id for c in config.chargers]
    return [c.id for c in config.chargers if node in groups_above(config.groups, c.group)]


def check_failsafe_fits(config: HeadroomConfig) -> None:
    """Invariant 3: the fail-safe profiles of every charger together stay under the limit."""
    _check_group_failsafes(config)
    site = config.site
    per_phase = [0.0, 0.0, 0.0]
    for charger in config.chargers:
        for phase in charger.site_phases():
            per_phase[phase] += site.failsafe_current_a * charger.connectors
    worst_a = max(per_phase) + site.base_load_reserve_a
    if site.max_current_a is not None and worst_a > site.max_current_a - site.safety_margin_a:
        raise ValueError(
            f"site.failsafe_current_a: {site.failsafe_current_a} A on every connector adds up "
            f"to {worst_a:.1f} A on one phase (with site.base_load_reserve_a), over "
            f"max_current_a − safety_margin_a = "
            f"{site.max_current_a - site.safety_margin_a:.1f} A"
        )
    total_w = (sum(per_phase) + 3 * site.base_load_reserve_a) * site.voltage_v
    max_w = site.max_power_w
    if max_w is not None and total_w > max_w - 3 * site.safety_margin_a * site.voltage_v:
        raise ValueError(
            f"site.failsafe_current_a: the fail-safe profiles add up to "
            f"{total_w / 1000:.1f} kW (with site.base_load_reserve_a), over max_power_kw "
            f"minus the margin"
        )


def _check_group_failsafes(config: HeadroomConfig) -> None:
    """The fail-safe profiles under each group fit its current limit too."""
    failsafe_a = config.site.failsafe_current_a
    for group in config.groups:
        if group.max_current_a is None:
            continue
        per_phase = [0.0, 0.0, 0.0]
        for charger in config.chargers:
            if group.id in groups_above(config.groups, charger.group):
                for phase in charger.site_phases():
                    per_phase[phase] += failsafe_a * charger.connectors
        bound_a = group.max_current_a - group.safety_margin_a
        if max(per_phase) > bound_a:
            raise ValueError(
                f"site.failsafe_current_a: the fail-safe profiles under group {group.id!r} add "
                f"up to {max(per_phase):.1f} A on one phase, over its "
                f"{bound_a:.1f} A (max_current_a − safety_margin_a)"
            )
