"""The dashboard in headless Chromium (Debian's, driven by Playwright) on a simulated site."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hil.ev import EV
from tests.api_site import TOKENS, api_site
from tests.rig import until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


async def test_a_manager_changes_the_limit_and_sees_the_site_follow(tmp_path: Path) -> None:
    """The page loads with the token from its fragment, shows both chargers charging, and after
    the manager sets 35 A the shown limit, the chart's data and the allocations follow."""
    from playwright.async_api import async_playwright

    async with api_site(tmp_path, chargers=2) as site:
        r = site.rig
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.3))
        await until(lambda: max(r.site.site_a()) > 55, 10, "both cars charging")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                page = await browser.new_page()
                await page.goto(f"{site.base_url}/#token={TOKENS['manager']}")
                await page.wait_for_selector("tr.connector >> text=Charging", timeout=10_000)
                before = await page.locator("tr.connector .setpoint").all_inner_texts()
                assert all(float(v) > 20 for v in before)  # 52 A free, 26 A each
                await page.fill("#limit-a", "35")
                await page.click("#limit-form button[type=submit]")
                await page.wait_for_selector("#form-msg >> text=saved", timeout=5_000)
                await page.wait_for_function(
                    "document.getElementById('numbers').textContent.includes('limit 35.0 A')",
                    timeout=5_000,
                )
                # allocations follow: 35 − 1 margin − 10 base = 24 A for two cars
                await page.wait_for_function(
                    "[...document.querySelectorAll('tr.connector .setpoint')]"
                    ".every(td => parseFloat(td.textContent) <= 12.5)",
                    timeout=8_000,
                )
                # the chart's data: the newest samples carry the new limit and a site under it
                await page.wait_for_function(
                    "(() => { const h = state.history.slice(-2);"
                    " return h.length == 2 && h.every(p => p.limit === 34 &&"
                    " Math.max(...p.a) <= 34.5); })()",
                    timeout=8_000,
                )
                await page.locator("tr.charger td").first.click()
                await page.wait_for_selector("#scope >> text=(cp-0)")
                await page.wait_for_selector("#timeline li", timeout=5_000)
                entries = await page.locator("#timeline li").all_inner_texts()
                assert entries
                assert all("cp-1" not in e for e in entries)
            finally:
                await browser.close()
        assert r.controller.config.site.max_current_a == 35
