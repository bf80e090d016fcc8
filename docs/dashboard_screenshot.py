"""Take docs/img/dashboard.png from a real `headroom demo` run (Debian's chromium, headless).

Run: .venv/bin/python docs/dashboard_screenshot.py [--chargers 10] [--after 40]
It starts the demo with its dashboard on a free port, opens the printed URL
after ``--after`` seconds, lowers the site limit to ``--limit`` amperes with
the page's form (as a manager would), opens the schedules fold, lets the chart
run on for 15 s and saves the page.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
from pathlib import Path

from hil.demo import run_demo

OUT = Path(__file__).parent / "img" / "dashboard.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main(chargers: int, after_s: float, limit_a: float) -> None:
    from playwright.async_api import async_playwright

    urls: list[str] = []

    def out(line: str) -> None:
        if re.match(r"dashboard: ", line):
            urls.append(line.split(" ", 1)[1])

    demo = asyncio.create_task(
        run_demo(chargers, after_s + 30, None, 1, out=out, api_port=_free_port())
    )
    while not urls:
        if demo.done():
            demo.result()  # raises why the demo stopped
            raise RuntimeError("the demo ended without serving its dashboard")
        await asyncio.sleep(0.2)
    await asyncio.sleep(after_s)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.goto(urls[0])
        await page.wait_for_selector("tr.connector")
        await asyncio.sleep(5)
        await page.fill("#limit-a", str(limit_a))
        await page.click("#limit-form button[type=submit]")
        await page.wait_for_selector("#form-msg >> text=saved")
        await page.click("#schedules-box summary")
        await asyncio.sleep(15)  # let the chart show the site following
        await page.screenshot(path=str(OUT), full_page=True)
        await browser.close()
    demo.cancel()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chargers", type=int, default=10)
    parser.add_argument("--after", type=float, default=25.0)
    parser.add_argument("--limit", type=float, default=105.0)
    args = parser.parse_args()
    asyncio.run(main(args.chargers, args.after, args.limit))
