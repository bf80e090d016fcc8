"""A fleet of thin simulated OCPP 1.6J charge points, run in a process of its own.

The benchmarks measure the controller, so the chargers must cost as little as
possible and must not share the controller's process (nor its GIL): each charge
point is one raw ``websockets`` client connection that speaks OCPP-J by hand
(``json.dumps`` of a list; no ``ocpp`` library, no schema validation).

Each charge point connects to ``{url}/{id}`` with the ``ocpp1.6`` subprotocol,
sends BootNotification, StatusNotification (Preparing), StartTransaction and
StatusNotification (Charging), then MeterValues every ``--interval`` seconds
(``Current.Import`` L1..L3, ``Power.Active.Import``, ``Current.Offered``), each
charger at its own phase within the interval, as a real depot's chargers are
spread. It waits for each answer before its next CALL (one CALL in flight, as
OCPP-J requires), so a controller that falls behind shows as a lower achieved
rate, never as an unbounded queue. Every ``SetChargingProfile`` is answered at
once with ``Accepted``; its receipt time (``time.monotonic()``, one clock for
every process on Linux), charger, connector, purpose and limit are recorded.
The car draws what it is offered: the TxProfile's limit if it has one, else
the TxDefaultProfile's, capped by the car's 32 A (leases are not timed out:
benchmark runs are shorter than a lease).

Control (JSON lines): the fleet prints ``{"event": "ready", ...}`` on stdout
once every charge point has started its transaction. It reads commands on
stdin: ``stats`` prints counters, its own CPU time and the MeterValues round
trip since the previous ``stats``; ``stop`` closes every
connection, writes the records to ``--out`` as JSON and prints
``{"event": "done"}``. :class:`FleetProcess` is the parent's side of it.

Usage (the benchmarks start it themselves)::

    python benchmarks/fleet.py --url ws://127.0.0.1:9000/ocpp --count 1000 --out /tmp/fleet.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

EV_MAX_A = 32.0  # what each simulated car could draw per phase with no profile in force
VOLTAGE_V = 230.0
CONNECT_IN_PARALLEL = 50  # handshakes at a time: the server's accept backlog is 100
CALL_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 20.0

# Answers to the few other CALLs a central system may send on connect (so a controller
# that starts asking them keeps working with the fleet); anything else gets NotSupported.
_OTHER_ANSWERS: dict[str, dict[str, Any]] = {
    "ChangeConfiguration": {"status": "Accepted"},
    "ClearChargingProfile": {"status": "Accepted"},
    "GetCompositeSchedule": {"status": "Rejected"},
    "TriggerMessage": {"status": "Rejected"},
}

Profile = tuple[float, str, int, str, float, int]
"""(received at monotonic s, charger id, connector id, purpose, limit A, stack level)."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Stats:
    """Counters shared by every charge point of the fleet."""

    profiles: list[Profile] = field(default_factory=list)
    meter_rtt_s: list[float] = field(default_factory=list)
    meter_sent: int = 0
    meter_answered: int = 0
    errors: list[str] = field(default_factory=list)


class ThinChargePoint:
    """One charge point: a websocket, its transaction and the limits it was given."""

    def __init__(self, charger_id: str, stats: _Stats) -> None:
        self.charger_id = charger_id
        self._stats = stats
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[list[Any]]] = {}
        self._ids = 0
        self.transaction_id: int | None = None
        self.tx_limit_a: float | None = None
        self.default_limit_a: float | None = None
        self.max_limit_a: float | None = None
        self.energy_wh = 0.0

    def offered_a(self) -> float:
        """What the charger offers the car: TxProfile over TxDefaultProfile, under the max."""
        limit = self.tx_limit_a if self.tx_limit_a is not None else self.default_limit_a
        offered = EV_MAX_A if limit is None else min(limit, EV_MAX_A)
        return offered if self.max_limit_a is None else min(offered, self.max_limit_a)

    async def start(self, url: str) -> None:
        """Connect, boot and start a transaction on connector 1."""
        self._ws = await connect(
            f"{url}/{self.charger_id}",
            subprotocols=[Subprotocol("ocpp1.6")],
            open_timeout=120,
            max_queue=None,
        )
        self._reader = asyncio.create_task(self._read(), name=f"read:{self.charger_id}")
        await self.call(
            "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Thin"}
        )
        await self._status("Preparing")
        answer = await self.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": "BENCH", "meterStart": 0, "timestamp": _now_iso()},
        )
        self.transaction_id = int(answer["transactionId"])
        await self._status("Charging")

    async def _status(self, status: str) -> None:
        await self.call(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": _now_iso()},
        )

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one CALL and wait for its CALLRESULT payload (a CALLERROR raises)."""
        assert self._ws is not None
        self._ids += 1
        unique_id = str(self._ids)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[unique_id] = future
        await self._ws.send(json.dumps([2, unique_id, action, payload], separators=(",", ":")))
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that races with the answer, and a meter loop would then outlive "stop".
            async with asyncio.timeout(CALL_TIMEOUT_S):
                answer = await future
        finally:
            self._pending.pop(unique_id, None)
        if answer[0] != 3:
            raise RuntimeError(f"{self.charger_id}: {action} answered {answer!r}")
        result: dict[str, Any] = answer[2]
        return result

    async def _read(self) -> None:
        """Answer the central system's CALLs at once; hand answers to the waiting call()."""
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):
            async for raw in self._ws:
                received_at = time.monotonic()
                message = json.loads(raw)
                if message[0] == 2:
                    await self._ws.send(self._answer(received_at, message))
                else:
                    future = self._pending.get(message[1])
                    if future is not None and not future.done():
                        future.set_result(message)

    def _answer(self, received_at: float, message: list[Any]) -> str:
        _, unique_id, action, payload = message
        if action == "SetChargingProfile":
            self._apply_profile(received_at, payload)
            return json.dumps([3, unique_id, {"status": "Accepted"}], separators=(",", ":"))
        if action == "GetConfiguration":
            unknown = payload.get("key", [])
            answer: dict[str, Any] = {"configurationKey": [], "unknownKey": unknown}
            return json.dumps([3, unique_id, answer], separators=(",", ":"))
        if action in _OTHER_ANSWERS:
            return json.dumps([3, unique_id, _OTHER_ANSWERS[action]], separators=(",", ":"))
        return json.dumps([4, unique_id, "NotSupported", "", {}], separators=(",", ":"))

    def _apply_profile(self, received_at: float, payload: dict[str, Any]) -> None:
        profile = payload["csChargingProfiles"]
        purpose = profile["chargingProfilePurpose"]
        limit_a = float(profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"])
        connector_id = int(payload["connectorId"])
        stack = int(profile["stackLevel"])
        self._stats.profiles.append(
            (received_at, self.charger_id, connector_id, purpose, limit_a, stack)
        )
        if purpose == "TxProfile":
            self.tx_limit_a = limit_a
        elif purpose == "TxDefaultProfile":
            self.default_limit_a = limit_a
        else:
            self.max_limit_a = limit_a

    def _meter_values(self, interval_s: float) -> dict[str, Any]:
        offered_a = self.offered_a()
        self.energy_wh += 3 * offered_a * VOLTAGE_V * interval_s / 3600
        current = f"{offered_a:.1f}"
        sampled = [
            {"value": current, "measurand": "Current.Import", "phase": phase, "unit": "A"}
            for phase in ("L1", "L2", "L3")
        ]
        sampled.append(
            {
                "value": f"{3 * offered_a * VOLTAGE_V:.0f}",
                "measurand": "Power.Active.Import",
                "unit": "W",
            }
        )
        sampled.append({"value": current, "measurand": "Current.Offered", "unit": "A"})
        return {
            "connectorId": 1,
            "transactionId": self.transaction_id,
            "meterValue": [{"timestamp": _now_iso(), "sampledValue": sampled}],
        }

    async def meter_loop(self, interval_s: float, phase_s: float) -> None:
        """MeterValues every ``interval_s``, one in flight; a late answer skips ticks."""
        next_at = time.monotonic() + phase_s
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            sent_at = time.monotonic()
            self._stats.meter_sent += 1
            try:
                await self.call("MeterValues", self._meter_values(interval_s))
            except (TimeoutError, RuntimeError) as exc:
                self._stats.errors.append(f"{self.charger_id}: MeterValues: {exc!r}")
            else:
                self._stats.meter_answered += 1
                self._stats.meter_rtt_s.append(time.monotonic() - sent_at)
            while next_at <= time.monotonic():
                next_at += interval_s

    async def close(self) -> None:
        """Close the connection."""
        if self._ws is not None:
            await self._ws.close()


async def _start_all(cps: list[ThinChargePoint], url: str, stats: _Stats) -> list[ThinChargePoint]:
    gate = asyncio.Semaphore(CONNECT_IN_PARALLEL)

    async def start(cp: ThinChargePoint) -> ThinChargePoint | None:
        async with gate:
            try:
                await cp.start(url)
            except Exception as exc:  # a failed start is reported, not fatal to the fleet
                stats.errors.append(f"{cp.charger_id}: start: {exc!r}")
                return None
        return cp

    started = await asyncio.gather(*(start(cp) for cp in cps))
    return [cp for cp in started if cp is not None]


def _write_records(path: str, text: str) -> None:
    """Write the records (once, at the end: blocking the loop then costs nothing)."""
    Path(path).write_text(text)


def _emit(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


async def _commands() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run_fleet(args: argparse.Namespace) -> None:
    """Start the fleet, serve commands from stdin, write the records on ``stop``."""
    stats = _Stats()
    ids = [f"{args.prefix}{i}" for i in range(args.count)]
    cps = [ThinChargePoint(cid, stats) for cid in ids]
    commands = await _commands()
    t0 = time.monotonic()
    live = await _start_all(cps, args.url, stats)
    rng = random.Random(args.seed)
    loops = [
        asyncio.create_task(cp.meter_loop(args.interval, rng.uniform(0, args.interval)))
        for cp in live
    ]
    _emit(
        {"event": "ready", "started": len(live), "of": len(cps), "start_s": time.monotonic() - t0}
    )
    seen_rtt = 0
    while line := (await commands.readline()).decode().strip():
        print(f"fleet: {line}", file=sys.stderr, flush=True)
        if line == "stats":
            recent, seen_rtt = sorted(stats.meter_rtt_s[seen_rtt:]), len(stats.meter_rtt_s)
            _emit(
                {
                    "event": "stats",
                    "meter_sent": stats.meter_sent,
                    "meter_answered": stats.meter_answered,
                    "cpu_s": time.process_time(),
                    "errors": len(stats.errors),
                    "rtt_median_ms": 1000 * recent[len(recent) // 2] if recent else None,
                    "rtt_p99_ms": 1000 * recent[int(0.99 * (len(recent) - 1))] if recent else None,
                }
            )
        elif line == "stop":
            break
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    print(f"fleet: closing {len(live)} connections", file=sys.stderr, flush=True)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CLOSE_TIMEOUT_S):  # a saturated server may never answer
            await asyncio.gather(*(cp.close() for cp in live), return_exceptions=True)
    print("fleet: writing records", file=sys.stderr, flush=True)
    _write_records(
        args.out,
        json.dumps(
            {
                "profiles": stats.profiles,
                "meter_rtt_s": stats.meter_rtt_s,
                "meter_sent": stats.meter_sent,
                "meter_answered": stats.meter_answered,
                "errors": stats.errors[:100],
                "error_count": len(stats.errors),
                "cpu_s": time.process_time(),
            }
        ),
    )
    _emit({"event": "done"})


def main(argv: list[str] | None = None) -> None:
    """Command line entry point of the fleet process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the central system's ws://HOST:PORT/ocpp")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--prefix", default="cp-")
    parser.add_argument("--interval", type=float, default=1.0, help="MeterValues period, s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True, help="where the records go on stop (JSON)")
    faulthandler.register(signal.SIGUSR1)  # the parent asks for our stacks if we hang
    asyncio.run(run_fleet(parser.parse_args(argv)))


# --- the parent's side --------------------------------------------------------


@dataclass
class FleetRecords:
    """What the fleet recorded, read back after ``stop``."""

    profiles: list[Profile]
    meter_rtt_s: list[float]
    meter_sent: int
    meter_answered: int
    errors: list[str]
    error_count: int
    cpu_s: float


class FleetProcess:
    """Runs ``fleet.py`` as a subprocess and talks to it over its stdin and stdout."""

    def __init__(self, url: str, count: int, out: str, interval_s: float = 1.0) -> None:
        self._argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            f"--url={url}",
            f"--count={count}",
            f"--interval={interval_s}",
            f"--out={out}",
        ]
        self._out = Path(out)
        self._proc: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}

    @property
    def pid(self) -> int:
        """The fleet's process id."""
        assert self._proc is not None
        return self._proc.pid

    async def start(self, timeout_s: float = 300.0) -> dict[str, Any]:
        """Spawn the fleet and wait until every charge point has started its transaction."""
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        self.ready = await self._expect("ready", timeout_s)
        return self.ready

    async def stats(self) -> dict[str, Any]:
        """The fleet's counters now (MeterValues sent and answered, its CPU seconds)."""
        await self._send("stats")
        return await self._expect("stats", 30.0)

    async def stop(self, timeout_s: float = 120.0) -> FleetRecords:
        """Close every connection and read the records back (the fleet is killed if it hangs)."""
        await self._send("stop")
        try:
            await self._expect("done", timeout_s)
        except TimeoutError:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGUSR1)  # its stacks, on our stderr, then kill it
            await asyncio.sleep(1.0)
            await self.kill()
            raise
        assert self._proc is not None
        await self._proc.wait()
        data = json.loads(self._out.read_text())
        data["profiles"] = [tuple(p) for p in data["profiles"]]
        return FleetRecords(**data)

    async def kill(self) -> None:
        """End the fleet process if it still runs (after a failure of the parent)."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()

    async def _send(self, line: str) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{line}\n".encode())
        await self._proc.stdin.drain()

    async def _expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        assert self._proc is not None
        assert self._proc.stdout is not None
        async with asyncio.timeout(timeout_s):
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"the fleet exited before {event!r}")
                message: dict[str, Any] = json.loads(line)
                if message.get("event") == event:
                    return message


if __name__ == "__main__":
    main()
