"""Each metered group's base load, estimated across decisions like the site's.

The loop keeps one :class:`~controller.base_load.BaseLoadEstimate` for the site and,
here, one per group with a meter of its own (docs/architecture.md, "Meters").
"""

from __future__ import annotations

from controller.base_load import BaseLoadEstimate
from controller.config import HeadroomConfig
from controller.decide import Phases
from controller.setpoint_log import SetpointLog
from controller.snapshot import SessionView, SiteSnapshot


class GroupBases:
    """The base-load estimate of each metered group, kept from one decision to the next."""

    def __init__(self) -> None:
        self._kept: dict[str, BaseLoadEstimate] = {}

    def reconfigure(self, window_s: float) -> None:
        """Estimate over ``window_s`` from now on (``control.base_load_window_s``)."""
        for estimate in self._kept.values():
            estimate.window_s = window_s

    def estimate(
        self,
        snapshot: SiteSnapshot,
        config: HeadroomConfig,
        setpoints: SetpointLog,
        away: list[SessionView],
        settle_s: dict[str, float],
    ) -> dict[str, Phases]:
        """Each metered group's base load, estimated like the site's from its own readings
        and the sessions below it, an offline charger's car among them; while a group's
        meter is doubtful, from its last good readings (its sessions are held meanwhile)."""
        bases = {}
        booted = [s for s in snapshot.sessions if s.charger_id in snapshot.booted]
        for group in config.groups:
            if group.id not in snapshot.meters:
                continue
            estimate = self._kept.setdefault(
                group.id, BaseLoadEstimate(config.control.base_load_window_s)
            )
            for reading in snapshot.group_readings.get(group.id, ()):
                estimate.add(reading)
            below = set(config.chargers_below(group.id))
            base = estimate.estimate(
                [s for s in booted if s.charger_id in below],
                config,
                setpoints,
                None,
                [s for s in away if s.charger_id in below],
                settle_s,
            )
            if base is not None:
                bases[group.id] = base
        return bases
