"""The facility manager API, in-process (ASGI) and over real HTTP against a simulated site."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from controller.audit import AuditQuery, read_audit
from hil.ev import EV
from tests.api_site import api_site, app_for, auth
from tests.rig import until

V1 = "/api/v1/sites/t"


def _client(site) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app_for(site)), base_url="http://t")


async def test_no_token_no_access_and_roles_are_enforced(tmp_path: Path) -> None:
    """401 without a (known) token; a viewer reads but gets 403 on a write; problem+json."""
    async with api_site(tmp_path, chargers=1, serve=False) as site, _client(site) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = await c.get(V1, headers=headers)
            assert r.status_code == 401
            assert r.headers["content-type"] == "application/problem+json"
        assert (await c.get(V1, headers=auth("viewer"))).status_code == 200
        r = await c.put(f"{V1}/settings/limit", json={"max_current_a": 40}, headers=auth("viewer"))
        assert r.status_code == 403
        assert "manager" in r.json()["detail"]
        r = await c.put(f"{V1}/settings", json={}, headers=auth("manager"))
        assert r.status_code == 403  # replacing everything is for admins


async def test_bad_input_gets_a_problem_naming_the_field(tmp_path: Path) -> None:
    """A limit over the rating, a wrong type and a cap under 6 A: 422 naming field and reason."""
    async with api_site(tmp_path, chargers=1, serve=False) as site, _client(site) as c:
        h = auth("manager")
        r = await c.put(f"{V1}/settings/limit", json={"max_current_a": 100}, headers=h)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "site.max_current_a"
        assert "physical rating of 63 A" in r.json()["errors"][0]["reason"]
        r = await c.put(f"{V1}/settings/limit", json={"max_current_a": "lots"}, headers=h)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "body.max_current_a"
        r = await c.put(f"{V1}/settings/chargers/cp-0", json={"max_current_a": 4}, headers=h)
        assert r.json()["errors"][0]["field"] == "chargers.cp-0.max_current_a"
        r = await c.put(f"{V1}/settings/groups/feeder", json={"max_current_a": 61}, headers=h)
        assert r.json()["errors"][0]["field"] == "groups.feeder.max_current_a"
        assert (await c.get(f"{V1}/chargers/nope", headers=h)).status_code == 404
        assert (await c.get("/api/v1/sites/other", headers=h)).status_code == 404
        # and the site is unchanged
        assert site.rig.controller.config.site.max_current_a == 63


async def test_concurrent_edits_are_refused_with_412(tmp_path: Path) -> None:
    """Two managers read the same ETag; the second write with it gets 412 and the new ETag."""
    async with api_site(tmp_path, chargers=1, serve=False) as site, _client(site) as c:
        h = auth("manager")
        etag = (await c.get(f"{V1}/settings", headers=h)).headers["etag"]
        first = await c.put(
            f"{V1}/settings/limit", json={"max_current_a": 50}, headers={**h, "If-Match": etag}
        )
        assert first.status_code == 200
        second = await c.put(
            f"{V1}/settings/limit", json={"max_current_a": 45}, headers={**h, "If-Match": etag}
        )
        assert second.status_code == 412
        assert second.headers["etag"] == first.headers["etag"]
        assert site.rig.controller.config.site.max_current_a == 50


async def test_state_chargers_sessions_and_timeline(tmp_path: Path) -> None:
    """A charging car shows in site state, its connector (setpoint, binding), sessions and
    the timeline filtered to its charger; session needs set by a manager are recorded."""
    async with api_site(tmp_path, chargers=2, serve=False) as site, _client(site) as c:
        cp = site.rig.charge_points[0]
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: cp.offered_a(1) == 32.0, 5, "offer of 32 A")
        h = auth("viewer")
        state = (await c.get(V1, headers=h)).json()
        assert state["mode"] == "normal"
        assert state["limits"]["max_current_a"] == 63
        conn = (await c.get(f"{V1}/chargers/cp-0/connectors/1", headers=h)).json()
        assert conn["setpoint_a"] == 32.0
        assert conn["binding"]
        assert conn["session"]["transaction_id"] > 0
        r = await c.put(
            f"{V1}/sessions/cp-0/1/needs",
            json={"departure_at": "2026-11-21T18:00:00Z", "energy_wh": 20000},
            headers=auth("manager"),
        )
        assert r.status_code == 204
        [session] = (await c.get(f"{V1}/sessions", headers=h)).json()
        assert session["needs"]["energy_wh"] == 20000
        assert session["needs"]["source"] == "operator"
        timeline = (await c.get(f"{V1}/timeline?charger_id=cp-0", headers=h)).json()
        assert {e["charger_id"] for e in timeline} == {"cp-0"}
        assert "SessionStarted" in {e["kind"] for e in timeline}
        none = await c.put(f"{V1}/sessions/cp-1/1/needs", json={}, headers=auth("manager"))
        assert none.status_code == 404


async def test_a_manager_lowers_the_limit_over_http_and_the_site_follows(tmp_path: Path) -> None:
    """Done-when of issue 7: over real HTTP a manager lowers the limit during a run; the
    metered site is under it within the EVs' response time and the audit log shows who."""
    async with api_site(tmp_path, chargers=2) as site:
        r = site.rig
        for cp in r.charge_points:
            await cp.plug_in(1, EV(response_delay_s=0.5))
        # 63 A − 1 A margin − 10 A base: 26 A each
        await until(lambda: max(r.site.site_a()) > 55, 10, "both cars charging")
        async with httpx.AsyncClient(base_url=site.base_url) as c:
            changed = await c.put(
                f"{V1}/settings/limit", json={"max_current_a": 35}, headers=auth("manager")
            )
            assert changed.status_code == 200
            took_s = await until(lambda: max(r.site.site_a()) <= 34.0, 5, "site under 35 A − 1 A")
            assert took_s < 3.0  # a decision at once, the command, the EVs' 0.5 s response
            state = (await c.get(V1, headers=auth("viewer"))).json()
            assert state["limits"]["max_current_a"] == 35
            async with c.stream("GET", f"{V1}/stream", headers=auth("viewer")) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        frame = json.loads(line[6:])
                        break
            assert frame["site"]["limits"]["max_current_a"] == 35
            assert len(frame["chargers"]) == 2
            audit = (await c.get(f"{V1}/audit?kind=changes", headers=auth("viewer"))).json()
        assert [(a["who"], a["resource"]) for a in audit] == [("manager-user", "site limit")]
    rows = list(read_audit(tmp_path / "audit.db", AuditQuery(kind="changes")))
    assert rows[0]["who"] == "manager-user"


async def test_settings_survive_a_restart(tmp_path: Path) -> None:
    """A limit set through the API is applied again by a controller started afterwards."""
    async with api_site(tmp_path, chargers=1, serve=False) as site, _client(site) as c:
        r = await c.put(
            f"{V1}/settings/chargers/cp-0", json={"priority": 5}, headers=auth("manager")
        )
        assert r.status_code == 200
    async with api_site(tmp_path, chargers=1, serve=False) as site:
        charger = site.rig.controller.config.charger("cp-0")
        assert charger is not None
        assert charger.priority == 5


async def test_a_connector_whose_car_left_shows_no_draw(tmp_path: Path) -> None:
    """The dashboard must not show a car's last draw on a connector that is Available again."""
    async with api_site(tmp_path, chargers=1, serve=False) as site, _client(site) as c:
        cp, live = site.rig.charge_points[0], site.rig.controller.live
        url, h = f"{V1}/chargers/cp-0/connectors/1", auth("viewer")
        await cp.plug_in(1, EV(response_delay_s=0.1))
        await until(lambda: (live.charger("cp-0").draw_a.get(1) or (0.0,))[0] > 6, 10, "a draw")
        conn = (await c.get(url, headers=h)).json()
        assert conn["status"] == "Charging"
        assert conn["measured_a"][0] > 6
        await cp.unplug(1)
        await until(lambda: live.charger("cp-0").status.get(1) == "Available", 10, "Available")
        conn = (await c.get(url, headers=h)).json()
        assert conn["measured_a"] == [None, None, None]
        assert conn["power_w"] is None
