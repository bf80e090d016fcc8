"""Jittered exponential backoff for reconnecting to meters and brokers (pure)."""

from __future__ import annotations


def jittered_backoff_s(failures: int, jitter: float, min_s: float, max_s: float) -> float:
    """Seconds to wait before attempt ``failures`` + 1.

    The ceiling doubles per consecutive failure from ``min_s`` up to ``max_s``;
    ``jitter`` in [0, 1) picks a point in its upper half, so devices that
    failed together (a switch reboot, a broker restart) do not all retry in
    the same instant.
    """
    ceiling = min(max_s, min_s * 2.0 ** max(failures - 1, 0))
    return ceiling * (0.5 + 0.5 * jitter)
