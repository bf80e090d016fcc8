"""/metrics, scraped over HTTP and read with the Prometheus text parser."""

from __future__ import annotations

import asyncio
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from hil.ev import EV
from tests.rig import rig, until


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample on /metrics as {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_show_the_site_the_loop_and_the_commands() -> None:
    """Site current, limit, headroom, mode, decisions and accepted commands are exported."""
    async with rig(metrics=True) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: max(cp.draw_a()) == 32.0, 5, "EV drawing 32 A")
        await asyncio.sleep(0.6)  # a meter poll and a decision with the new draw
        port = r.controller.metrics_port
        assert port is not None
        samples = await asyncio.to_thread(scrape, port)
    site = ("site", "t")
    l1 = samples[("headroom_site_current_amperes", (("phase", "L1"), site))]
    assert 41.0 <= l1 <= 43.0  # 10 A base + 32 A
    assert samples[("headroom_site_limit_amperes", (site,))] == 63.0
    headroom = samples[("headroom_site_headroom_amperes", (("phase", "L1"), site))]
    assert abs(headroom - (63.0 - 1.0 - l1)) < 1e-6
    assert samples[("headroom_mode", (("mode", "normal"), site))] == 1.0
    assert samples[("headroom_decisions_total", (site,))] >= 1
    assert samples[("headroom_commands_total", (("result", "Accepted"), site))] >= 2
    assert samples[("headroom_sessions", (site,))] == 1.0
    assert samples[("headroom_chargers_connected", (site,))] == 1.0
    assert ("headroom_decision_step_seconds_count", (site, ("step", "solve"))) in samples
    # The car followed its first setpoint within 0.1 s: the learned time is the 1 s floor.
    assert samples[("headroom_charger_response_seconds", (("charger", "cp-0"), site))] == 1.0


async def test_time_over_the_limit_is_counted() -> None:
    """Seconds over the limit accumulate while the meter shows the site above it."""
    async with rig(metrics=True, interval_s=30) as r:
        r.base_a[:] = [70.0, 10.0, 10.0]  # no charger can fix this: base alone is over 63 A
        await asyncio.sleep(1.0)
        port = r.controller.metrics_port
        assert port is not None
        samples = await asyncio.to_thread(scrape, port)
    over_s = samples[("headroom_over_limit_seconds_total", (("site", "t"),))]
    assert 0.5 <= over_s <= 1.5
