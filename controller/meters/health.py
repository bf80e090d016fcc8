"""Logging a meter's health as state changes (good, invalid, failed), not every poll."""

from __future__ import annotations

from typing import Any, Literal

from controller.model import MeterFailed, MeterReading, Quality

MeterState = Literal["good", "invalid", "failed"]


def state_of(event: MeterReading | MeterFailed) -> MeterState:
    """Which of the three health states an event puts its meter in."""
    if isinstance(event, MeterFailed):
        return "failed"
    return "good" if event.quality is Quality.GOOD else "invalid"


class HealthLog:
    """Logs when a meter's state changes: connected, failing, invalid, recovered."""

    def __init__(self, log: Any) -> None:
        self._log = log  # a structlog logger bound to the meter
        self.state: MeterState | None = None

    def note(self, event: MeterReading | MeterFailed) -> None:
        """Log ``event`` if it changes the meter's state; stay quiet otherwise."""
        state = state_of(event)
        previous, self.state = self.state, state
        if state == previous:
            return
        if state == "good":
            message = "meter connected" if previous is None else "meter recovered"
            self._log.info(message, previous=previous)
        elif state == "failed":
            message = "meter unreachable" if previous is None else "meter failing"
            self._log.warning(message, previous=previous, detail=event.detail)
        else:
            self._log.warning("meter reading invalid", previous=previous, detail=event.detail)
