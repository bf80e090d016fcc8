"""How far and how long a run went over its limit, and how fast it came back. Pure.

"Over" is against the limit itself (not the limit less the margin), judged on
the ground-truth samples of :mod:`hil.kpis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hil.kpis import Sample, SiteLimit, over_limit


def over_amounts(limit: SiteLimit, site_a: Sequence[float]) -> tuple[tuple[float, ...], float]:
    """How far one sample is above the limit itself: A per phase, and W over the power limit."""
    max_a = limit.max_current_a
    over_a = tuple(max(a - max_a, 0.0) if max_a is not None else 0.0 for a in site_a)
    power_w = sum(site_a) * limit.voltage_v
    over_w = max(power_w - limit.max_power_w, 0.0) if limit.max_power_w is not None else 0.0
    return over_a, over_w


def overshoot(limit: SiteLimit, samples: Sequence[Sample], dt_s: float) -> dict[str, Any]:
    """Peak over the limit (A per phase, kW) and the energy above it (kWh).

    The energy counts, per sample, the larger of the excess power and the
    per-phase excess currents converted at the nominal voltage.
    """
    peak_a = [0.0, 0.0, 0.0]
    peak_w = 0.0
    energy_j = 0.0
    for s in samples:
        over_a, over_w = over_amounts(s.limit_or(limit), s.site_a)
        peak_a = [max(p, o) for p, o in zip(peak_a, over_a, strict=True)]
        peak_w = max(peak_w, over_w)
        energy_j += max(over_w, sum(over_a) * limit.voltage_v) * dt_s
    return {
        "peak_over_limit_a": round(max(peak_a), 3),
        "peak_over_limit_a_per_phase": [round(a, 3) for a in peak_a],
        "peak_over_limit_kw": round(peak_w / 1000, 3),
        "energy_over_limit_kwh": round(energy_j / 3.6e6, 6),
    }


def recovery_times(
    limit: SiteLimit, samples: Sequence[Sample], disturbances: Sequence[float], dt_s: float
) -> list[dict[str, float | None]]:
    """Seconds from each disturbance until the site was under its limit for the rest of its window.

    A disturbance's window runs to the next disturbance. With no sample over
    the limit in it, recovery is 0; else it is the time of the first sample
    under the limit after the window's last one over, less the disturbance
    time (that sample may lie past the window); ``None`` if the run ended over.
    """
    times = sorted(set(disturbances))
    result: list[dict[str, float | None]] = []
    for i, at_s in enumerate(times):
        end_s = times[i + 1] if i + 1 < len(times) else float("inf")
        window = [s for s in samples if at_s <= s.t < end_s]
        last_over = next(
            (s for s in reversed(window) if over_limit(s.limit_or(limit), s.site_a)), None
        )
        recover: float | None = 0.0
        if last_over is not None:
            under = next(
                (
                    s
                    for s in samples
                    if s.t > last_over.t and not over_limit(s.limit_or(limit), s.site_a)
                ),
                None,
            )
            recover = None if under is None else round(under.t - at_s, 3)
        result.append({"at_s": round(at_s, 3), "recover_s": recover})
    return result
