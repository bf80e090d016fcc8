"""A simulated site run on its own, to stand in for real devices: a grid meter and chargers.

The HIL rig treats these as real: it starts nothing for them and finds them
over the network. The meter (Modbus TCP, SDM630 map) measures a constant
building load plus the chargers' draw; each charger connects to the given
OCPP endpoint (retrying until the controller listens, as a charger does) and
gets a car plugged in ``--arrive-s`` after it booted. It runs until
interrupted (SIGINT or SIGTERM)::

    python -m hil.field_site --ocpp-url ws://127.0.0.1:9000/ocpp --meter-port 5020 \\
        --charger cp-a --charger cp-b --base-a 20 --arrive-s 2

It prints ``ready meter_port=N`` once the meter listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
from collections.abc import Sequence

from websockets.exceptions import InvalidHandshake

from hil.charge_point import SimulatedChargePoint
from hil.devices import build_ev
from hil.meter import SimulatedMeter
from hil.scenario import EvSpec
from hil.site import SimulatedSite, WiredCharger

RETRY_S = 0.2  # a charger's wait between connection attempts while the controller is down


async def _connect(cp: SimulatedChargePoint) -> None:
    while True:
        try:
            await cp.start()
            return
        except (OSError, InvalidHandshake):  # nobody listens yet, or it does not admit us yet
            await asyncio.sleep(RETRY_S)


async def _charger(cp: SimulatedChargePoint, arrive_s: float, ev: EvSpec) -> None:
    await _connect(cp)
    await asyncio.sleep(arrive_s)
    await cp.plug_in(1, build_ev(ev, random.Random(cp.charger_id), None, cp.voltage_v))


async def serve(args: argparse.Namespace) -> None:
    """Run the meter and the chargers until cancelled."""
    loop = asyncio.get_running_loop()
    site = SimulatedSite(lambda _t: (args.base_a,) * 3, [], loop.time)
    meter = SimulatedMeter(source=site.meter_values, port=args.meter_port)
    await meter.start()
    ev = EvSpec(max_current_a=args.ev_max_a, phases=3, battery_kwh=60, soc=0.3, delay_s=1.0)
    cps = [
        SimulatedChargePoint(cid, args.ocpp_url, max_current_a=args.max_current_a)
        for cid in args.charger
    ]
    site.chargers.extend(WiredCharger(cp) for cp in cps)
    print(f"ready meter_port={meter.port}", flush=True)
    try:
        await asyncio.gather(*(_charger(cp, args.arrive_s, ev) for cp in cps))
        await asyncio.Event().wait()  # run until cancelled
    finally:
        for cp in cps:
            with contextlib.suppress(Exception):
                await cp.stop()
        await meter.stop()


def main(argv: Sequence[str]) -> int:
    """Parse the arguments and serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m hil.field_site", description=__doc__)
    parser.add_argument("--ocpp-url", required=True, help="the controller's ws://HOST:PORT/ocpp")
    parser.add_argument("--meter-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--charger", action="append", default=[], help="a charger id (repeat)")
    parser.add_argument("--max-current-a", type=float, default=32.0)
    parser.add_argument("--ev-max-a", type=float, default=32.0)
    parser.add_argument("--base-a", type=float, default=20.0, help="building load per phase")
    parser.add_argument("--arrive-s", type=float, default=1.0)
    args = parser.parse_args(list(argv))

    async def run() -> None:
        task = asyncio.create_task(serve(args))
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
