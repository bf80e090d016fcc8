"""What a charger back without booting holds. Pure.

A charger that reconnects without a BootNotification (a network blip) keeps
its profiles: OCPP 1.6 profiles persist across a connection, and only a
reboot, announced by BootNotification, may lose them. So the dispatcher keeps
what such a charger held (it forgets it on a boot), and the charger is not one
with "no limit acknowledged yet" (:mod:`controller.untrusted`), whose rating
would be reserved and whose neighbours cut for it.

What it holds is known up to two things: a setpoint on its way when the link
dropped may or may not have been applied, and a lease may have run out while it
was away (it is on its fail-safe then). :func:`rejoined_held` counts the higher:
the session is planned, and paced, from the most it may hold, and that limit is
sent again at once (``Held.unsure``); its acceptance says what it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

from controller.config import HeadroomConfig
from controller.dispatch import Held
from controller.snapshot import SiteSnapshot


def rejoined_held(
    held: Held | None,
    ceiling_a: float | None,
    transaction_id: int,
    failsafe_a: float,
    rating_a: float,
    now: float,
) -> Held | None:
    """What a session's charger counts as holding once it is back without booting.

    ``held``: the setpoint it accepted before it left; ``ceiling_a``: the highest limit
    it may hold from the decisions logged (:meth:`controller.car_floors.SetpointLog.ceiling`:
    every target sent since it last accepted the one it was sent; infinite before it
    accepted one); its fail-safe, should the lease have run out while it was away. The
    highest of these, no more than ``rating_a``, marked ``unsure``. ``None`` when no
    decision was logged for the session and nothing held: it runs on its fail-safe default.
    """
    if held is not None and held.transaction_id != transaction_id:
        held = None  # a new transaction: the old TxProfile ended with the old one
    if held is None and ceiling_a is None:
        return None
    most_a = max(held.limit_a if held else 0.0, ceiling_a or 0.0, failsafe_a)
    most_a = min(most_a, rating_a)
    if held is None:
        return Held(most_a, now, transaction_id, unsure=True)
    return replace(held, limit_a=most_a, unsure=True)


def rejoined(
    snapshot: SiteSnapshot,
    chargers: Collection[str],
    held: Mapping[str, Held],
    ceiling: Callable[[str], float | None],
    config: HeadroomConfig,
) -> dict[str, Held]:
    """:func:`rejoined_held` for each steered session of ``chargers`` (back without booting),
    by session key; ``ceiling`` is the setpoint log's."""
    out = {}
    failsafe_a = config.site.failsafe_current_a
    for s in snapshot.sessions:
        if s.charger_id not in chargers or s.restored is not None:
            continue
        charger = config.charger(s.charger_id)
        # An unknown charger is never given more than its fail-safe (controller/decide.py).
        rating_a = charger.max_current_a if charger else failsafe_a
        bound = rejoined_held(
            held.get(s.key), ceiling(s.key), s.transaction_id, failsafe_a, rating_a, snapshot.at
        )
        if bound is not None:
            out[s.key] = bound
    return out
