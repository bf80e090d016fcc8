"""The dispatcher: sends planned setpoints to chargers and records every answer.

It owns the I/O half of commanding (the pure half is :mod:`controller.dispatch`):

* one task per charger at a time, so a slow charger never blocks the loop or
  the others, and each connection has at most one call in flight;
* decreases go out first; increases and renewals wait until no decrease is
  in flight anywhere, and the loop is woken as soon as the last one is
  answered so the increases follow at once;
* every command ends in a recorded :class:`CommandResult`; a setpoint counts
  as held only once the charger accepted it, so anything not accepted is
  planned and sent again on the next decision (the retry), and repeated
  failures are escalated in the log;
* on boot each charger gets its fail-safe default profile before any setpoint.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any

import structlog

from controller.clock import Clock
from controller.dispatch import Change, ChangeKind, Held
from controller.fallback import (
    LADDER,
    REFUSALS_TO_STEP_DOWN,
    ProfileRoute,
    after_result,
    maybe_applied,
    setpoint_command,
)
from controller.model import (
    ChargerLink,
    CommandResult,
    CommandStatus,
    ProfileCommand,
    ProfilePurpose,
)
from controller.pacing import imposed

log = structlog.get_logger(__name__)

FAILSAFE_PROFILE_ID = 1
FAILSAFE_STACK_LEVEL = 0
FAILSAFE_RETRY_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # pauses between fail-safe attempts
ESCALATE_AFTER = 3  # consecutive failures before a command problem is logged as an error


class Dispatcher:
    """Sends changes through each charger's :class:`ChargerLink`."""

    def __init__(
        self,
        links: Callable[[str], ChargerLink | None],
        clock: Clock,
        failsafe_a: float,
        lease_s: float,
        wake: Callable[[], None] = lambda: None,
        on_result: Callable[[CommandResult], None] | None = None,
    ) -> None:
        self._links = links
        self._clock = clock
        self._failsafe_a = failsafe_a
        self._lease_s = lease_s
        self._wake = wake
        self._on_result = on_result
        self.held: dict[str, Held] = {}
        self.in_flight: dict[str, float] = {}
        """Setpoints sent and not answered yet, by connector key."""
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._decreasing: set[str] = set()
        self._decrease_failed = False
        self._waiting: set[str] = set()  # chargers with changes skipped while busy
        self._failures: Counter[str] = Counter()
        self.routes: dict[str, ProfileRoute] = {}
        self.results: Counter[str] = Counter()
        self.sent = 0

    def held_a(self) -> dict[str, float]:
        """The acknowledged limit per connector key."""
        return {key: h.limit_a for key, h in self.held.items()}

    def seed(self, key: str, held: Held) -> None:
        """Count ``held`` as accepted: a setpoint the charger holds from before a restart
        (:func:`controller.restored.resumed_a`). The same limit accepted since (re-asserted)
        was no change, its lease kept; another limit accepted since stands."""
        since = self.held.get(key)
        if since is None:
            self.held[key] = held
        elif (since.limit_a, since.transaction_id) == (held.limit_a, held.transaction_id):
            self.held[key] = replace(held, acked_at=max(since.acked_at, held.acked_at))

    def submit(self, changes: Sequence[Change]) -> None:
        """Start sending; returns at once. A charger with a call in flight waits a round."""
        by_charger: dict[str, list[Change]] = {}
        for change in changes:
            by_charger.setdefault(change.target.charger_id, []).append(change)
        decreases = {
            cid: [c for c in cs if c.kind is ChangeKind.DECREASE] for cid, cs in by_charger.items()
        }
        for cid, batch in decreases.items():
            if batch and cid in self._busy:
                self._waiting.add(cid)
            elif batch:
                self._decreasing.add(cid)
                self._start(cid, self._send_changes(cid, batch))
        if self._decreasing:
            return  # increases wait until every decrease is answered
        for cid, batch in by_charger.items():
            if cid in self._busy:
                self._waiting.add(cid)
            else:
                self._start(cid, self._send_changes(cid, batch))

    def run_alone(self, charger_id: str, work: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Run ``work()`` (a call that is not a setpoint) in the charger's own slot.

        Only when the charger has nothing in flight and no decrease is being sent
        anywhere, so the call neither doubles up on the connection nor delays a
        decrease; False when it cannot start now.
        """
        if charger_id in self._busy or self._decreasing:
            return False
        self._start(charger_id, work())
        return True

    def install_failsafe(self, charger_id: str, forget: bool = True) -> None:
        """Forget what the charger held (not on a reconnect without boot: it kept it,
        :mod:`controller.rejoin`); give it its fail-safe default after any call in flight."""
        if forget:
            self.forget_charger(charger_id)
        self._start(charger_id, self._send_failsafe(charger_id), after=self._busy.get(charger_id))

    def forget_charger(self, charger_id: str) -> None:
        """The charger booted: nothing it held can be assumed."""
        prefix = f"{charger_id}/"
        for key in [k for k in self.held if k.startswith(prefix)]:
            del self.held[key]

    def forget_ended(self, live_keys: set[str]) -> None:
        """Drop held setpoints of sessions that ended (their TxProfile ended with them)."""
        for key in [k for k in self.held if k not in live_keys]:
            del self.held[key]

    @property
    def busy(self) -> bool:
        """True while any command is in flight."""
        return bool(self._busy)

    async def drain(self) -> None:
        """Wait until every command in flight is answered."""
        while self._busy:
            await asyncio.gather(*self._busy.values(), return_exceptions=True)

    async def close(self) -> None:
        """Cancel whatever is in flight."""
        tasks = list(self._busy.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._busy.clear()

    def _start(
        self,
        charger_id: str,
        work: Coroutine[Any, Any, None],
        after: asyncio.Task[None] | None = None,
    ) -> None:
        async def runner() -> None:
            if after is not None:
                await asyncio.gather(after, return_exceptions=True)
            try:
                await work
            finally:
                if self._busy.get(charger_id) is task:
                    del self._busy[charger_id]
                if charger_id in self._waiting:
                    self._waiting.discard(charger_id)
                    self._wake()  # changes skipped while it was busy can go now
                if charger_id in self._decreasing:
                    self._decreasing.discard(charger_id)
                    if not self._decreasing:
                        if not self._decrease_failed:
                            self._wake()  # the increases held back can go now
                        self._decrease_failed = False  # a failed one is retried at the next tick

        task = asyncio.create_task(runner(), name=f"dispatch:{charger_id}")
        self._busy[charger_id] = task

    async def _send_changes(self, charger_id: str, changes: list[Change]) -> None:
        for change in changes:
            t = change.target
            self.in_flight[change.key] = t.limit_a
            try:
                result, sent_at = await self._send_setpoint(charger_id, change)
            finally:
                self.in_flight.pop(change.key, None)
            if result.ok:
                now = self._clock.monotonic()
                before = self.held.get(change.key)
                if before is not None and before.transaction_id != t.transaction_id:
                    before = None  # the last car's: this stay's first profile is its first change
                kept = before if change.kind is ChangeKind.RENEW else None  # no change
                up = change.kind is ChangeKind.INCREASE
                self.held[change.key] = Held(
                    t.limit_a,
                    now,
                    t.transaction_id,
                    changed_at=kept.changed_at if kept else now,
                    sent_at=kept.sent_at if kept else sent_at,
                    increased_at=now if up else (before.increased_at if before else -math.inf),
                    imposed=imposed(t.reason),
                )
            else:
                if change.kind is ChangeKind.DECREASE:
                    self._decrease_failed = True
                if maybe_applied(result):
                    self._maybe_holds(change, sent_at)
            log.info(
                "setpoint",
                charger_id=charger_id,
                connector_id=t.connector_id,
                kind=change.kind.value,
                old_a=change.old_a,
                limit_a=t.limit_a,
                reason=t.reason,
                purpose=result.command.purpose.value,
                result=result.status.value,
                latency_ms=round(result.latency_s * 1000, 1),
            )

    def _maybe_holds(self, change: Change, sent_at: float) -> None:
        """A setpoint that timed out or met a CALLERROR while the charger processed it may have
        been applied (:func:`controller.fallback.maybe_applied`; a refused one was not). Above
        what the charger held, it counts as the most the charger may hold (``Held.unsure``:
        planned and paced from it, sent again at once, a decrease if the target is lower)
        until an acceptance says what it holds; not as an acceptance
        (``acked_at`` −∞: no lease renewed, no floor raised), but as a change its car may
        follow from ``sent_at``, when its frame went out (``Held.change_sent_at``: the next
        increase waits for it as after any change). Without a held setpoint the
        next decision sends one anyway (the charger runs on its fail-safe default)."""
        t = change.target
        before = self.held.get(change.key)
        if before is None or before.transaction_id != t.transaction_id:
            return
        if t.limit_a > before.limit_a:
            self.held[change.key] = replace(
                before, limit_a=t.limit_a, acked_at=-math.inf, unsure=True, sent_at=sent_at
            )

    async def _send_setpoint(self, charger_id: str, change: Change) -> tuple[CommandResult, float]:
        """Send by the charger's route; on a refusal, try again at once, stepping down the
        ladder as :func:`controller.fallback.after_result` decides (a bounded number of tries).
        The last answer, and when its frame went out (``Held.sent_at``)."""
        t = change.target
        for _ in range(len(LADDER) * REFUSALS_TO_STEP_DOWN):
            route = self.routes.get(charger_id, ProfileRoute())
            limit_a = t.limit_a
            if route.purpose is ProfilePurpose.CHARGE_POINT_MAX:
                # One limit for the whole charger: what its other connectors hold, plus this.
                prefix = f"{charger_id}/"
                limit_a += sum(
                    h.limit_a
                    for k, h in self.held.items()
                    if k.startswith(prefix) and k != change.key
                )
            command = setpoint_command(
                route, charger_id, t.connector_id, t.transaction_id, limit_a, self._lease_s
            )
            sent_at = self._clock.monotonic()
            result = await self._send(command)
            age_s = self._clock.monotonic() - t.started_at
            new_route = after_result(route, result, age_s)
            self.routes[charger_id] = new_route
            if new_route.purpose is not route.purpose:
                log.warning(
                    "charger refuses a profile purpose; stepping down",
                    charger_id=charger_id,
                    refused=route.purpose.value,
                    now_using=new_route.purpose.value,
                    detail=result.detail,
                )
            elif new_route.refusals <= route.refusals or route.purpose is LADDER[-1]:
                # Accepted, not a refusal that counts (timeout, start race), or refused at
                # the bottom of the ladder: the next decision tries again.
                return result, sent_at
        return result, sent_at

    async def _send_failsafe(self, charger_id: str) -> None:
        """Learn the charger, then install its fail-safe default, retrying until it is in.

        Invariant 3 rests on this profile: a refusal or a silence is retried (each
        attempt recorded) as long as the charger stays connected.
        """
        link = self._links(charger_id)
        if link is not None:
            await link.prepare()
        command = ProfileCommand(
            charger_id=charger_id,
            connector_id=0,
            purpose=ProfilePurpose.TX_DEFAULT,
            limit_a=self._failsafe_a,
            stack_level=FAILSAFE_STACK_LEVEL,
            profile_id=FAILSAFE_PROFILE_ID,
        )
        for attempt, pause_s in enumerate((*FAILSAFE_RETRY_S, None), start=1):
            result = await self._send(command)
            log.info(
                "fail-safe profile",
                charger_id=charger_id,
                limit_a=self._failsafe_a,
                result=result.status.value,
                detail=result.detail,
                attempt=attempt,
            )
            if result.ok or result.status is CommandStatus.NOT_CONNECTED or pause_s is None:
                return
            await asyncio.sleep(pause_s)

    async def _send(self, command: ProfileCommand) -> CommandResult:
        link = self._links(command.charger_id)
        if link is None:
            result = CommandResult(command, CommandStatus.NOT_CONNECTED, 0.0, "no connection")
        else:
            result = await link.set_profile(command)
        self.sent += 1
        self.results[result.status.value] += 1
        if self._on_result is not None:
            self._on_result(result)
        key = f"{command.charger_id}/{command.connector_id}"
        if result.ok:
            self._failures.pop(key, None)
        else:
            self._failures[key] += 1
            level = log.error if self._failures[key] >= ESCALATE_AFTER else log.warning
            level(
                "command failed",
                charger_id=command.charger_id,
                connector_id=command.connector_id,
                purpose=command.purpose.value,
                status=result.status.value,
                detail=result.detail,
                consecutive=self._failures[key],
            )
        return result
