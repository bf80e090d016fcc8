"""A simulated site with the API on it, for the API, browser and fuzz tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from controller.api.app import create_app
from controller.api.auth import TokenBook, sha256_hex
from controller.api.server import ApiServer
from controller.config import ApiSettings
from tests.rig import Rig, rig

TOKENS = {"viewer": "viewer-token", "manager": "manager-token", "admin": "admin-token"}
BOOK = TokenBook((f"{role}-user", role, sha256_hex(token)) for role, token in TOKENS.items())


def auth(role: str) -> dict[str, str]:
    """The Authorization header of the test token with ``role``."""
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@dataclass
class ApiSite:
    rig: Rig
    server: ApiServer | None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"


@asynccontextmanager
async def api_site(tmp_path: Path, chargers: int = 2, serve: bool = True) -> AsyncIterator[ApiSite]:
    """A running simulated site (audit log and state store in ``tmp_path``), optionally served."""
    keys = {
        "store": {"path": str(tmp_path / "state.db")},
        "groups": [{"id": "feeder", "max_current_a": 60}],
    }
    async with rig(chargers, audit_path=str(tmp_path / "audit.db"), config_keys=keys) as r:
        server = None
        if serve:
            server = ApiServer(ApiSettings(port=0), {"t": r.controller}, BOOK)
            await server.start()
        try:
            yield ApiSite(r, server)
        finally:
            if server is not None:
                await server.stop()


def app_for(site: ApiSite):  # type: ignore[no-untyped-def]
    """The ASGI app over the site, for in-process tests."""
    return create_app({"t": site.rig.controller}, BOOK)
