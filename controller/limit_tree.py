"""The site as a tree of limit nodes, for the problem the policy solves. Pure.

The site node, a ``demand window`` node below it when a demand-charge target is
set, the configured groups, and one node per charger (its rating shared by its
connectors). A limit set by others on a whole charger (OCPP 2.0.1
NotifyChargingLimit, EVSE 0) lowers that charger's node.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

from controller.config import HeadroomConfig
from controller.node_modes import Phases
from policies import LimitNode


def limit_tree(
    config: HeadroomConfig,
    base_a: Phases,
    demand_cap_w: float | None,
    group_base_a: Mapping[str, Phases] | None,
    external: Mapping[str, float],
) -> list[LimitNode]:
    """The site's nodes, parents first: site, demand window (with a target), groups, chargers.

    ``group_base_a`` is the base load of each group that has a meter of its own;
    ``external``: whole-charger limits others set.
    """
    site = config.site
    nodes = [
        LimitNode(
            id=site.id,
            max_current_a=site.max_current_a,
            max_power_w=site.max_power_w,
            margin_a=site.safety_margin_a,
            base_load_a=base_a,
            label="site",
        )
    ]
    parent = site.id
    if demand_cap_w is not None:
        parent = f"{site.id}/demand"
        nodes.append(
            LimitNode(
                id=parent,
                parent=site.id,
                max_power_w=demand_cap_w,
                margin_a=site.safety_margin_a,
                base_load_a=base_a,
                label="demand window",
            )
        )
    for group in config.group_order():
        nodes.append(
            LimitNode(
                id=group.id,
                parent=group.parent or parent,
                max_current_a=group.max_current_a,
                max_power_w=None if group.max_power_kw is None else group.max_power_kw * 1000,
                margin_a=group.safety_margin_a,
                base_load_a=(group_base_a or {}).get(group.id, (0.0, 0.0, 0.0)),
                label=group.id,
            )
        )
    nodes += _charger_nodes(config, parent, external)
    return nodes


_Kept = tuple["weakref.ref[HeadroomConfig]", str, dict[str, float], list[LimitNode]]
_charger_nodes_kept: dict[int, _Kept] = {}
"""Charger nodes per live config (one per site in a process), by the config's id; an
entry leaves with its config (a replaced config's thousand nodes do not outlive it)."""


def _charger_nodes(
    config: HeadroomConfig, parent: str, external: Mapping[str, float]
) -> list[LimitNode]:
    """One node per charger under ``parent``; ``external``: whole-charger limits others set
    (the sum obeys). Built once per config, parent and limits (a thousand nodes a decision
    at depot scale, nearly always the same); each site of a process keeps its own."""
    kept = _charger_nodes_kept.get(id(config))
    if kept is not None and kept[0]() is config and kept[1] == parent and kept[2] == external:
        return kept[3]
    nodes = [
        LimitNode(
            id=c.id,
            parent=c.group or parent,
            max_current_a=min(c.max_current_a, max(external.get(c.id, c.max_current_a), 0.0)),
            label=c.id,
        )
        for c in config.chargers
    ]
    if kept is None or kept[0]() is not config:
        weakref.finalize(config, _charger_nodes_kept.pop, id(config), None)
    _charger_nodes_kept[id(config)] = (weakref.ref(config), parent, dict(external), nodes)
    return nodes
