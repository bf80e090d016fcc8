"""A site meter read over Modbus TCP: poll, decode, judge, emit an event.

:class:`ModbusMeter` reads the blocks of a :class:`RegisterMap`'s read plan
once per poll and puts exactly one event per poll into the sink: a
:class:`MeterReading` (``GOOD``, or ``INVALID`` with the reason) or a
:class:`MeterFailed` saying what went wrong on the wire. Nothing raises out of
:meth:`ModbusMeter.run`; a missing value is never reported as 0.

The pymodbus client's defaults (3 s timeout, 3 retries, reconnects backing
off to 300 s) suit a slow poller; this reader keeps one short timeout, no
in-poll retries and its own reconnect backoff capped at a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random

import structlog
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from controller.clock import Clock
from controller.meters.backoff import jittered_backoff_s
from controller.meters.decode import DecodedValues, decode, plausibility_problems, read_plan
from controller.meters.health import HealthLog
from controller.meters.registers import DecodeError, RegisterMap
from controller.meters.sunspec import SunSpecError, SunSpecScan, locate
from controller.model import EventSink, MeterFailed, MeterReading, Quality

_log = structlog.get_logger(__name__)

# A missed answer is retried at the next tick a second later; retrying within
# the poll would only stretch it past the poll interval.
CLIENT_RETRIES = 0
RECONNECT_MIN_S = 0.2
# A meter back from a reboot is read again within ~5 s; longer waits would keep
# the site in its conservative mode for no reason.
RECONNECT_MAX_S = 5.0


class _PollError(Exception):
    """A read failed; ``drop`` says whether the connection is unusable."""

    def __init__(self, detail: str, *, drop: bool) -> None:
        super().__init__(detail)
        self.drop = drop


def reconnect_delay_s(failures: int, jitter: float) -> float:
    """Seconds before reconnect attempt ``failures`` + 1; ``jitter`` in [0, 1) spreads meters."""
    return jittered_backoff_s(failures, jitter, RECONNECT_MIN_S, RECONNECT_MAX_S)


def _exception_name(code: int) -> str:
    try:
        return ExcCodes(code).name
    except ValueError:
        return "unknown exception code"


async def scan_sunspec(client: AsyncModbusTcpClient, unit_id: int) -> SunSpecScan:
    """Walk the SunSpec models of the device behind ``client`` (holding registers).

    An exception answer ends the walk where it happened (no marker there, or
    no more models); a lost connection or a timeout raises
    :class:`~pymodbus.exceptions.ModbusException`.
    """
    scan = SunSpecScan()
    while (read := scan.next_read()) is not None:
        start, count = read
        response = await client.read_holding_registers(start, count=count, device_id=unit_id)
        scan.feed(None if response.isError() else list(response.registers))
    return scan


async def locate_sunspec_map(
    host: str, port: int, unit_id: int, register_map: RegisterMap, timeout_s: float = 1.0
) -> RegisterMap:
    """``register_map`` moved to where the device at ``host:port`` keeps its SunSpec model.

    Raises :class:`~controller.meters.sunspec.SunSpecError` when the model is
    not there and :class:`ConnectionError` when the device cannot be read.
    """
    client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=CLIENT_RETRIES)
    try:
        if not await client.connect():
            raise ConnectionError(f"cannot connect to {host}:{port}")
        try:
            scan = await scan_sunspec(client, unit_id)
        except ModbusException as exc:
            raise ConnectionError(f"SunSpec discovery at {host}:{port} failed: {exc}") from exc
        return locate(register_map, scan)
    finally:
        client.close()


def _stop_if_cancelled() -> None:
    """Raise the cancellation a read swallowed.

    pymodbus waits for each answer with ``asyncio.wait_for``, which on Python
    3.11 returns the answer and drops a cancellation that arrives with it; the
    task then polls on and whoever stops the meter waits for ever. The task
    still counts the request (``cancelling()``), so the loop honours it here.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class ModbusMeter:
    """Polls one Modbus TCP meter and emits MeterReading / MeterFailed events.

    With a SunSpec map (one with ``sunspec``) and ``sunspec_discovery`` on,
    each new connection first finds the model from the ``SunS`` marker and
    reads the map moved there.
    """

    def __init__(
        self,
        meter_id: str,
        host: str,
        port: int,
        unit_id: int,
        register_map: RegisterMap,
        sink: EventSink,
        clock: Clock,
        poll_interval_s: float = 1.0,
        timeout_s: float = 0.5,
        max_current_a: float = 10_000.0,
        max_power_w: float = 10_000_000.0,
        sunspec_discovery: bool = True,
    ) -> None:
        self.meter_id = meter_id
        self._host, self._port, self._unit_id = host, port, unit_id
        self._configured_map = register_map
        self._discover = sunspec_discovery and register_map.sunspec is not None
        self._map = register_map  # the map in use: moved by discovery on each connection
        self._plan = read_plan(register_map)
        self._located = not self._discover
        self._sink, self._clock = sink, clock
        self._interval_s, self._timeout_s = poll_interval_s, timeout_s
        self._max_current_a, self._max_power_w = max_current_a, max_power_w
        self._client: AsyncModbusTcpClient | None = None
        self._failures = 0  # consecutive polls that lost the connection
        # Socket timing is real time whatever the controller's clock says, so
        # backoff runs on the event loop's clock, not on ``clock``.
        self._retry_at = -math.inf
        self._last_error = ""
        self._log = _log.bind(meter_id=meter_id, address=self._address)
        self._health = HealthLog(self._log)

    @property
    def _address(self) -> str:
        return f"{self._host}:{self._port}"

    async def poll_once(self) -> MeterReading | MeterFailed:
        """Read the plan once; emit the resulting event into the sink and return it."""
        event = await self._poll()
        self._health.note(event)
        self._sink(event)
        return event

    async def run(self) -> None:
        """Poll every ``poll_interval_s`` on a fixed schedule until cancelled."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                await self.poll_once()
                _stop_if_cancelled()
                next_at += self._interval_s
                now = loop.time()
                if next_at < now:  # a poll overran: skip the missed ticks, keep the phase
                    next_at += math.ceil((now - next_at) / self._interval_s) * self._interval_s
                await asyncio.sleep(next_at - now)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection; a later poll reconnects."""
        self._drop_client()

    # --- one poll -----------------------------------------------------------

    async def _poll(self) -> MeterReading | MeterFailed:
        client = await self._connected_client()
        if isinstance(client, str):
            return self._failed(client)
        try:
            if not self._located:
                await self._locate(client)
            blocks = await self._read_blocks(client)
        except _PollError as exc:
            if exc.drop:
                self._lose_connection(str(exc))
            return self._failed(str(exc))
        except Exception as exc:  # a bug must not end the meter's loop; it is logged
            self._log.exception("meter poll crashed")
            self._lose_connection(f"unexpected {type(exc).__name__}: {exc}")
            return self._failed(self._last_error)
        at = self._clock.monotonic()
        self._failures = 0
        try:
            values = decode(self._map, blocks)
        except DecodeError as exc:
            return MeterFailed(self.meter_id, at, f"decode error: {exc}")
        return self._reading(values, at)

    def _reading(self, values: DecodedValues, at: float) -> MeterReading:
        problems = plausibility_problems(values, self._max_current_a, self._max_power_w)
        quality = Quality.INVALID if problems else Quality.GOOD
        return MeterReading(
            self.meter_id,
            at,
            values.current_a,
            values.power_w,
            quality,
            "; ".join(problems),
            self._clock.now().timestamp(),  # received now: a meter's registers carry no time
        )

    def _failed(self, detail: str) -> MeterFailed:
        return MeterFailed(self.meter_id, self._clock.monotonic(), detail)

    async def _locate(self, client: AsyncModbusTcpClient) -> None:
        """Find the SunSpec model on this connection and read the map moved there."""
        try:
            scan = await scan_sunspec(client, self._unit_id)
        except ModbusException as exc:
            raise _PollError(
                f"SunSpec discovery at {self._address} failed: {exc}", drop=True
            ) from exc
        try:
            self._map = locate(self._configured_map, scan)
        except SunSpecError as exc:
            raise _PollError(f"SunSpec discovery at {self._address}: {exc}", drop=False) from exc
        self._plan = read_plan(self._map)
        self._located = True
        assert self._map.sunspec is not None
        self._log.info("sunspec model located", model_address=self._map.sunspec.model_address)

    async def _read_blocks(self, client: AsyncModbusTcpClient) -> dict[int, list[int]]:
        blocks: dict[int, list[int]] = {}
        for start, count in self._plan:
            what = (
                f"{self._map.function} registers {start}..{start + count - 1}"
                f" of unit {self._unit_id} at {self._address}"
            )
            blocks[start] = await self._read_block(client, start, count, what)
        return blocks

    async def _read_block(
        self, client: AsyncModbusTcpClient, start: int, count: int, what: str
    ) -> list[int]:
        read = (
            client.read_input_registers
            if self._map.function == "input"
            else client.read_holding_registers
        )
        try:
            response = await read(start, count=count, device_id=self._unit_id)
        except ConnectionException as exc:
            raise _PollError(f"connection lost reading {what}", drop=True) from exc
        except ModbusIOException as exc:
            detail = f"no valid answer within {self._timeout_s:g} s reading {what} ({exc.string})"
            raise _PollError(detail, drop=True) from exc
        except (ModbusException, OSError) as exc:
            raise _PollError(f"error reading {what}: {exc}", drop=True) from exc
        if response.isError():
            code = getattr(response, "exception_code", -1)
            detail = f"exception response {code} ({_exception_name(code)}) reading {what}"
            raise _PollError(detail, drop=False)  # the meter answered: the link is fine
        return list(response.registers)

    # --- connection ---------------------------------------------------------

    async def _connected_client(self) -> AsyncModbusTcpClient | str:
        """A connected client, or why there is none this poll."""
        if self._client is not None and self._client.connected:
            return self._client
        if self._client is not None:
            self._drop_client()  # the peer closed it; reconnect at once
            self._last_error = f"connection to {self._address} closed by the meter"
        loop = asyncio.get_running_loop()
        wait_s = self._retry_at - loop.time()
        if wait_s > 0:
            return f"not connected; next attempt in {wait_s:.2f} s (last error: {self._last_error})"
        # A fresh client per connection: pymodbus reuses one protocol object per
        # client, and a late close of the old socket could close the new one.
        client = AsyncModbusTcpClient(
            self._host,
            port=self._port,
            name=f"meter {self.meter_id}",
            timeout=self._timeout_s,
            retries=CLIENT_RETRIES,
            reconnect_delay=0,  # 0 = no background reconnects: this class decides when
            reconnect_delay_max=0,
        )
        started = loop.time()
        if await client.connect():
            self._client = client
            return client
        client.close()
        timed_out = loop.time() - started >= self._timeout_s * 0.9
        why = f"no answer within {self._timeout_s:g} s" if timed_out else "refused or unreachable"
        self._lose_connection(f"cannot connect to {self._address}: {why}")
        return self._last_error

    def _lose_connection(self, detail: str) -> None:
        """Forget the connection and schedule the next attempt with jittered backoff."""
        self._drop_client()
        self._failures += 1
        delay_s = reconnect_delay_s(self._failures, random.random())
        self._retry_at = asyncio.get_running_loop().time() + delay_s
        self._last_error = detail

    def _drop_client(self) -> None:
        # Another device may answer on this address after a reconnect: find the model anew.
        self._located = not self._discover
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a dead socket may complain
                self._client.close()
            self._client = None
