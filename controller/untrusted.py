"""Sessions whose charger holds no limit the controller can count on. Pure.

A charger holds a limit for a session once it accepted the session's setpoint,
or, before that, its fail-safe default (the TxDefaultProfile installed on
boot). Two cases are left where the car may draw the charger's full rating
whatever the plan says, and :func:`decide` reserves that rating for them:

* **no limit acknowledged yet**: the session started before its charger
  accepted its fail-safe default (a charger slow to answer while it is being
  set up on boot) and before its first setpoint was accepted. An idle
  connector without a profile offers the car everything (OCPP 1.6: "as if no
  constraints apply");
* **an untrusted charger**: its composite schedule contradicted the fail-safe
  default it had just accepted (it accepts profiles and applies none). Such a
  charger lets any car draw its rating the moment it plugs in, so its rating
  is reserved while it is idle too: a plan that waited for the session would
  be a car's response time late, and the site over its limit meanwhile.

The reservation ends when the charger's word can be counted on again: the
setpoint or fail-safe accepted, or a later check of the fail-safe agreeing.

**Back without booting.** A charger that reconnects without a BootNotification
(a network blip) keeps its profiles (OCPP 1.6: they persist across a
connection; a reboot, announced by BootNotification, may lose them), so it is
not a charger with "no limit acknowledged yet": its fail-safe default still
stands if it accepted one since it booted (:meth:`SiteState.failsafe_sent`),
and each session counts as holding the most it may hold
(:func:`controller.rejoin.rejoined_held`) until the setpoint sent again at
once is accepted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from controller.config import HeadroomConfig
from controller.snapshot import SiteSnapshot

NO_LIMIT_YET = "no limit acknowledged yet: it may offer its rating"

Phases = tuple[float, float, float]


def unbounded(snapshot: SiteSnapshot, held_a: Mapping[str, float]) -> dict[str, str]:
    """The sessions whose charger may let the car draw its rating, and why.

    Only booted chargers' sessions that are steered (not restored ones, which
    have a reservation of their own) count.
    """
    why: dict[str, str] = {}
    for session in snapshot.sessions:
        cid = session.charger_id
        if cid not in snapshot.booted or session.restored is not None:
            continue
        if cid in snapshot.untrusted:
            why[session.key] = f"charger untrusted: {snapshot.untrusted[cid]}"
        elif session.key not in held_a and cid in snapshot.failsafe_pending:
            why[session.key] = NO_LIMIT_YET
    return why


def reserve_idle(
    snapshot: SiteSnapshot, config: HeadroomConfig, base: Phases, busy: Collection[str]
) -> Phases:
    """``base`` with the rating of each untrusted charger added on its site phases, unless
    one of its sessions already reserves it (``busy``: charger ids)."""
    load = list(base)
    for cid in snapshot.untrusted:
        charger = config.charger(cid)
        if charger is None or cid in busy:
            continue
        for phase in charger.site_phases():
            load[phase] += charger.max_current_a
    return (load[0], load[1], load[2])
