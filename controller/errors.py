"""Headroom's errors, one tree, translated from library errors at the edge.

::

    HeadroomError
    ├── ConfigError          the config file is unreadable or invalid (permanent)
    └── DeviceError          a device could not be reached or answered badly
        ├── MeterError       a site meter poll failed (retryable)
        └── ChargerError     a charger command failed (retryable unless rejected)

Adapters catch the library's exceptions (websockets, ocpp, pymodbus) and
raise or record ours with ``raise ... from exc``; the loop only ever sees
these types or plain results.
"""

from __future__ import annotations


class HeadroomError(Exception):
    """Base of every error Headroom raises on purpose."""


class ConfigError(HeadroomError):
    """The configuration is invalid; ``problems`` lists every ``key.path: reason``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class DeviceError(HeadroomError):
    """A device could not be reached or answered badly."""


class MeterError(DeviceError):
    """A site meter poll failed."""


class ChargerError(DeviceError):
    """A charger command failed."""
