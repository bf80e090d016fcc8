"""Several sites in one process: separate configs, separate loops, faults kept apart."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from controller.config import HeadroomConfig, parse_sites
from controller.decide import Mode
from controller.deployment import run_sites, supervise
from controller.errors import ConfigError
from controller.service import SiteController
from hil.charge_point import SimulatedChargePoint
from hil.ev import EV
from hil.meter import SimulatedMeter
from hil.site import SimulatedSite, WiredCharger
from tests.rig import config_for, until


def site(site_id: str, port: int = 0) -> dict[str, Any]:
    """A small valid site config as YAML would give it."""
    return {
        "site": {"id": site_id, "max_current_a": 63},
        "ocpp": {"port": port},
        "meter": {"host": "127.0.0.1"},
        "chargers": [{"id": "cp-1"}],
    }


def test_several_sites_validate_each_with_its_path() -> None:
    """Errors in the second site are named sites[1].…; good sites load."""
    assert [c.site.id for c in parse_sites({"sites": [site("a"), site("b")]})] == ["a", "b"]
    broken = site("b")
    broken["site"] = {"id": "b"}
    with pytest.raises(ConfigError) as info:
        parse_sites({"sites": [site("a"), broken]})
    [problem] = info.value.problems
    assert problem.startswith("sites[1].site: no limit")


def test_sites_may_not_share_an_id_or_a_port() -> None:
    """Two sites on one OCPP port, or with one id, cannot run in one process."""
    with pytest.raises(ConfigError) as info:
        parse_sites({"sites": [site("a", 9000), site("a", 9000)]})
    assert info.value.problems == [
        "sites[1].site.id: a is also used by sites[0]",
        "sites[1].ocpp.port: 9000 is also used by sites[0]",
    ]


async def test_a_failing_site_is_restarted() -> None:
    """A site whose controller fails is restarted after its back-off."""
    starts: list[float] = []

    class Flaky(SiteController):
        async def run_forever(self) -> None:
            starts.append(time.monotonic())
            if len(starts) == 1:
                raise RuntimeError("meter gateway crashed")
            await asyncio.sleep(3600)

    config = config_for(meter_port=1)
    task = asyncio.create_task(supervise(config, Flaky, backoff_s=(0.05,)))
    await until(lambda: len(starts) == 2, 5, "restart after the failure")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_one_sites_dead_meter_leaves_the_other_site_alone() -> None:
    """Site b's meter goes silent: b goes to its fail-safe, a keeps charging at full rate."""
    controllers: dict[str, SiteController] = {}
    meters, cps, configs = [], [], []
    for name in ("a", "b"):
        sim = SimulatedSite(lambda _t: (10.0, 10.0, 10.0), [], time.monotonic)
        meter = SimulatedMeter(source=sim.meter_values)
        await meter.start()
        meters.append((meter, sim))
        base = config_for(meter.port, failsafe_after_s=1.0).model_dump()
        base["site"]["id"] = name
        configs.append(HeadroomConfig.model_validate(base))

    def factory(config: HeadroomConfig) -> SiteController:
        controllers[config.site.id] = SiteController(config)
        return controllers[config.site.id]

    runner = asyncio.create_task(run_sites(configs, factory))
    try:
        await until(
            lambda: len(controllers) == 2 and all(c.ocpp.port for c in controllers.values()),
            5,
            "both sites listening",
        )
        for name, (_, sim) in zip(("a", "b"), meters, strict=True):
            url = f"ws://127.0.0.1:{controllers[name].ocpp.port}/ocpp"
            cp = SimulatedChargePoint("cp-0", url, meter_interval_s=0.25)
            sim.chargers.append(WiredCharger(cp))
            await cp.start()
            await cp.plug_in(1, EV(response_delay_s=0.1))
            cps.append(cp)
        await until(lambda: all(cp.offered_a(1) == 32.0 for cp in cps), 5, "both at 32 A")
        meters[1][0].fault = "silent"
        b_loop = controllers["b"].loop
        await until(
            lambda: b_loop.last is not None and b_loop.last.mode is Mode.FAILSAFE,
            5,
            "site b in fail-safe",
        )
        await until(lambda: cps[1].offered_a(1) == 6.0, 3, "site b's car at 6 A")
        a_last = controllers["a"].loop.last
        assert a_last is not None
        assert a_last.mode is Mode.NORMAL
        assert cps[0].offered_a(1) == 32.0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await asyncio.gather(*(cp.stop() for cp in cps), return_exceptions=True)
        for meter, _ in meters:
            await meter.stop()


def test_example_of_several_sites_is_valid() -> None:
    """examples/sites.yaml loads as two sites."""
    from pathlib import Path

    from controller.config import load_sites

    path = Path(__file__).resolve().parent.parent / "examples" / "sites.yaml"
    assert [c.site.id for c in load_sites(path)] == ["depot-north", "depot-south"]
