"""OCPP 2.0.1 transaction ids (strings, the charger's) mapped to ours (site-wide ints). Pure.

A 2.0.1 charger names its transactions itself with strings; the site state,
the dispatcher and the audit log name sessions by our integers. One
:class:`TransactionIds` per charger keeps both directions and which EVSE each
transaction runs on. The server keeps it per charger id, not per
connection, so a charger that reconnects mid-session keeps its session's id,
and the state store keeps it across a controller restart (:meth:`adopt`).
"""

from __future__ import annotations

from collections.abc import Callable


class TransactionIds:
    """Both names of each open transaction of one charger, and its EVSE."""

    def __init__(self, next_id: Callable[[], int]) -> None:
        self._next_id = next_id
        self._ours: dict[str, int] = {}
        self._theirs: dict[int, str] = {}
        self._evse: dict[str, int] = {}

    def ours(self, theirs: str, evse_id: int | None = None) -> int:
        """Our id for the charger's ``theirs`` (a new one the first time); binds its EVSE."""
        ours = self._ours.get(theirs)
        if ours is None:
            ours = self._next_id()
            self._ours[theirs] = ours
            self._theirs[ours] = theirs
        if evse_id is not None:
            self._evse[theirs] = evse_id
        return ours

    def adopt(self, theirs: str, ours: int, evse_id: int) -> None:
        """Bind ``theirs`` to ``ours`` as it was before a restart (from the state store)."""
        self._ours[theirs] = ours
        self._theirs[ours] = theirs
        self._evse[theirs] = evse_id

    def known(self, theirs: str) -> int | None:
        """Our id for ``theirs`` if the transaction is open, without creating one."""
        return self._ours.get(theirs)

    def theirs(self, ours: int) -> str | None:
        """The charger's id for our ``ours``; ``None`` if it is not an open transaction here."""
        return self._theirs.get(ours)

    def evse_of(self, theirs: str) -> int | None:
        """The EVSE the transaction runs on, if known."""
        return self._evse.get(theirs)

    def on_evse(self, evse_id: int) -> int | None:
        """Our id of the transaction open on ``evse_id``, if any."""
        for theirs, evse in self._evse.items():
            if evse == evse_id:
                return self._ours.get(theirs)
        return None

    def end(self, theirs: str) -> None:
        """Forget a transaction that ended."""
        ours = self._ours.pop(theirs, None)
        if ours is not None:
            self._theirs.pop(ours, None)
        self._evse.pop(theirs, None)
