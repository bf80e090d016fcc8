"""The ``deadline`` config section as a plan's horizon: slots, prices, base-load forecast. Pure.

Price windows are local clock times (``from``/``to`` as ``HH:MM`` in the
section's ``timezone``); a window whose ``to`` is not after its ``from``
wraps past midnight, and ``from == to`` covers the whole day. A slot takes
the price of the first window that holds its midpoint; a slot in no window
costs 0 (list the whole day to avoid cheap gaps).

The base-load forecast (``base_load_profile``: amperes per site phase for
each local hour of the day) gives each slot the entry of the hour that holds
its midpoint. It feeds slots 1 on; slot 0 is planned with the measured base
load (:class:`policies.problem.Horizon`), so the profile can make the plan
wrong about later slots but never makes a setpoint unsafe now.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from controller.config import DeadlineSettings, PriceWindow
from policies.problem import Horizon

Phases = tuple[float, float, float]


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _holds(window: PriceWindow, minute: float) -> bool:
    start, end = _minutes(window.start), _minutes(window.end)
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps past midnight (or the whole day)


def _slot_minutes(settings: DeadlineSettings, now_s: float, slots: int) -> list[float]:
    """The local clock time (minutes after midnight) of each slot's midpoint from ``now_s``."""
    zone, slot_s = ZoneInfo(settings.timezone), settings.slot_min * 60
    minutes = []
    for k in range(slots):
        local = datetime.fromtimestamp(now_s + (k + 0.5) * slot_s, zone)
        minutes.append(local.hour * 60 + local.minute + local.second / 60)
    return minutes


def slot_prices(settings: DeadlineSettings, now_s: float, slots: int) -> tuple[float, ...]:
    """The price of each slot from ``now_s`` (UNIX s), by the windows' local clock times."""
    if not settings.prices:
        return ()
    return tuple(
        next((w.price for w in settings.prices if _holds(w, minute)), 0.0)
        for minute in _slot_minutes(settings, now_s, slots)
    )


def slot_base_loads(settings: DeadlineSettings, now_s: float, slots: int) -> tuple[Phases, ...]:
    """The forecast base load of each slot from ``now_s``: the profile's entry for the local
    hour that holds the slot's midpoint; none without a profile."""
    profile = settings.base_load_profile
    if not profile:
        return ()
    return tuple(profile[int(minute // 60)] for minute in _slot_minutes(settings, now_s, slots))


def horizon(settings: DeadlineSettings, now_s: float) -> Horizon:
    """The plan's horizon at wall-clock ``now_s``: slot length and count, prices, peak cap,
    base-load forecast."""
    slots = max(1, round(settings.horizon_h * 60 / settings.slot_min))
    cap_w = None if settings.peak_cap_kw is None else settings.peak_cap_kw * 1000
    return Horizon(
        slot_s=settings.slot_min * 60,
        slots=slots,
        now_s=now_s,
        prices=slot_prices(settings, now_s, slots),
        peak_cap_w=cap_w,
        base_forecast_a=slot_base_loads(settings, now_s, slots),
    )
