"""The ``deadline`` config section as a plan's horizon: slots and their prices. Pure.

Price windows are local clock times (``from``/``to`` as ``HH:MM`` in the
section's ``timezone``); a window whose ``to`` is not after its ``from``
wraps past midnight, and ``from == to`` covers the whole day. A slot takes
the price of the first window that holds its midpoint; a slot in no window
costs 0 (list the whole day to avoid cheap gaps).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from controller.config import DeadlineSettings, PriceWindow
from policies.problem import Horizon


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _holds(window: PriceWindow, minute: float) -> bool:
    start, end = _minutes(window.start), _minutes(window.end)
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps past midnight (or the whole day)


def slot_prices(settings: DeadlineSettings, now_s: float, slots: int) -> tuple[float, ...]:
    """The price of each slot from ``now_s`` (UNIX s), by the windows' local clock times."""
    if not settings.prices:
        return ()
    zone, slot_s = ZoneInfo(settings.timezone), settings.slot_min * 60
    prices = []
    for k in range(slots):
        local = datetime.fromtimestamp(now_s + (k + 0.5) * slot_s, zone)
        minute = local.hour * 60 + local.minute + local.second / 60
        price = next((w.price for w in settings.prices if _holds(w, minute)), 0.0)
        prices.append(price)
    return tuple(prices)


def horizon(settings: DeadlineSettings, now_s: float) -> Horizon:
    """The plan's horizon at wall-clock ``now_s``: slot length and count, prices, peak cap."""
    slots = max(1, round(settings.horizon_h * 60 / settings.slot_min))
    cap_w = None if settings.peak_cap_kw is None else settings.peak_cap_kw * 1000
    return Horizon(
        slot_s=settings.slot_min * 60,
        slots=slots,
        now_s=now_s,
        prices=slot_prices(settings, now_s, slots),
        peak_cap_w=cap_w,
    )
