"""The dashboard in headless Chromium (Debian's, driven by Playwright) on a simulated site."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hil.ev import EV
from tests.api_site import TOKENS, api_site, auth
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


async def test_the_forms_refuse_a_group_limit_cap_a_charger_and_add_a_schedule(
    tmp_path: Path,
) -> None:
    """From the dashboard a manager sees the API's reason when a group limit is refused, caps a
    charger (the API and the controller follow) and adds a schedule; the changes list says
    who. A viewer's page offers no forms."""
    import httpx
    from playwright.async_api import async_playwright

    async with api_site(tmp_path, chargers=2) as site:
        r = site.rig
        await r.charge_points[0].plug_in(1, EV(response_delay_s=0.3))
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                page = await browser.new_page()
                await page.goto(f"{site.base_url}/#token={TOKENS['manager']}")
                await page.wait_for_selector("tr.connector >> text=Charging", timeout=10_000)
                await page.click("#group-box summary")
                await page.select_option("#group-id", "feeder")
                await page.fill("#group-a", "61")  # the feeder is rated 60 A
                await page.click("#group-form button[type=submit]")
                refusal = page.locator("#group-form .msg.error")
                await refusal.wait_for(timeout=5_000)
                assert "refused (422)" in await refusal.inner_text()
                assert "groups.feeder.max_current_a" in await refusal.inner_text()
                await page.click("#charger-box summary")
                await page.select_option("#charger-id", "cp-0")
                await page.fill("#charger-cap", "10")
                await page.click("#charger-form button[type=submit]")
                await page.wait_for_selector("#charger-form .msg >> text=saved", timeout=5_000)
                await page.wait_for_selector(
                    "tr.charger[data-charger=cp-0] .cap >> text=10.0 of 32.0", timeout=5_000
                )
                await page.wait_for_function(
                    "parseFloat(document.querySelector"
                    "('tr.connector[data-connector=\"cp-0/1\"] .setpoint').textContent) <= 10",
                    timeout=8_000,
                )
                await page.click("#schedules-box summary")
                await page.fill("#schedule-name", "evening")
                await page.check("#schedule-days input[value=mon]")
                await page.fill("#schedule-start", "18:00")
                await page.fill("#schedule-end", "22:00")
                await page.fill("#schedule-a", "40")
                await page.click("#schedule-form button[type=submit]")
                await page.wait_for_selector("#schedules li >> text=evening", timeout=5_000)
                await page.wait_for_selector("#changes li >> text=schedules", timeout=5_000)
                changes = await page.locator("#changes li").all_inner_texts()
                assert any("manager-user: charger cp-0" in c for c in changes)

                viewer = await browser.new_page()
                await viewer.goto(f"{site.base_url}/#token={TOKENS['viewer']}")
                await viewer.wait_for_selector("#read-only", state="visible", timeout=10_000)
                assert not await viewer.locator("#limit-form").is_visible()
                assert not await viewer.locator("#charger-box").is_visible()
            finally:
                await browser.close()
        async with httpx.AsyncClient(base_url=site.base_url, headers=auth("viewer")) as api:
            settings = (await api.get("/api/v1/sites/t/settings")).json()
        assert settings["chargers"]["cp-0"]["max_current_a"] == 10
        [schedule] = settings["schedules"]
        assert (schedule["name"], schedule["days"], schedule["start"]) == (
            "evening",
            ["mon"],
            "18:00",
        )
        assert schedule["max_current_a"] == 40
        assert "feeder" not in settings["groups"]
        charger = r.controller.config.charger("cp-0")
        assert charger is not None
        assert charger.max_current_a == 10
