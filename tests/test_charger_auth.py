"""Charger passwords from the config: hashed at rest, checked at the handshake."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from websockets.exceptions import InvalidStatus

from controller.cli import main
from controller.config import parse_config
from controller.ocpp.auth import hash_password, verify_password
from controller.service import SiteController
from hil.charge_point import SimulatedChargePoint
from hil.meter import SimulatedMeter
from hil.site import SimulatedSite
from tests.rig import until

PASSWORD = "correct-horse-battery-1"


def test_broken_hash_in_config_is_named() -> None:
    """A password_hash that is not one of ours is a config error on that charger."""
    data = {
        "site": {"id": "s", "max_current_a": 63},
        "meter": {"host": "127.0.0.1"},
        "chargers": [{"id": "cp-0", "password_hash": "plain-text-password"}],
    }
    with pytest.raises(Exception, match=r"chargers\[0\]: password_hash: ") as info:
        parse_config(data)
    assert "headroom hash-password" in str(info.value)


def test_hash_password_cli_generates_a_verifiable_pair(capsys: pytest.CaptureFixture[str]) -> None:
    """`headroom hash-password --generate` prints a new password and its hash, which verify."""
    assert main(["hash-password", "--generate"]) == 0
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert verify_password(lines["password_hash"], lines["password"])


def test_hash_password_cli_reads_stdin_and_refuses_short_ones() -> None:
    """A password piped in is hashed; one shorter than OCPP's 16 characters is refused."""
    run = [sys.executable, "-m", "controller.cli", "hash-password"]
    good = subprocess.run(
        run, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert good.returncode == 0
    assert verify_password(good.stdout.split(": ", 1)[1].strip(), PASSWORD)
    short = subprocess.run(
        run, input="short\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert short.returncode == 1
    assert "hash-password:" in short.stderr


async def test_only_the_right_password_connects() -> None:
    """The charger with its password boots and gets its fail-safe; a wrong one gets 401."""
    site = SimulatedSite(lambda _t: (10.0, 10.0, 10.0), [], time.monotonic)
    meter = SimulatedMeter(source=site.meter_values)
    await meter.start()
    config = parse_config(
        {
            "site": {"id": "s", "max_current_a": 63, "failsafe_current_a": 6},
            "ocpp": {"host": "127.0.0.1", "port": 0},
            "meter": {"host": "127.0.0.1", "port": meter.port},
            "chargers": [{"id": "cp-0", "password_hash": hash_password(PASSWORD)}],
        }
    )
    controller = SiteController(config)
    await controller.start()
    url = f"ws://127.0.0.1:{controller.ocpp.port}/ocpp"
    good = SimulatedChargePoint("cp-0", url, password=PASSWORD)
    try:
        with pytest.raises(InvalidStatus) as refused:
            await SimulatedChargePoint("cp-0", url, password="wrong-password-123").start()
        assert refused.value.response.status_code == 401
        await good.start()
        await until(lambda: bool(good.received_profiles), 5, "fail-safe for the good charger")
    finally:
        await good.stop()
        await controller.stop()
        await meter.stop()
