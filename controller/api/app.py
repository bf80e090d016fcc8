"""The FastAPI application: /api/v1 (OpenAPI at /api/v1/openapi.json) and the dashboard at /.

Several sites per process are addressed as ``/api/v1/sites/{site_id}/...``;
``sites`` is a live mapping (the supervisor replaces a restarted site's
controller in it). The dashboard is static HTML/JS/CSS shipped in the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from controller.api import problems
from controller.api.auth import TokenBook
from controller.api.read_routes import router as read_router
from controller.api.write_routes import router as write_router
from controller.service import SiteController

PREFIX = "/api/v1"


def create_app(sites: Mapping[str, SiteController], tokens: TokenBook) -> FastAPI:
    """The API over ``sites``, admitting ``tokens``."""
    app = FastAPI(
        title="Headroom",
        summary="Facility manager API: site limits, priorities, live state and the audit log.",
        version="1",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.sites = sites
    app.state.tokens = tokens
    problems.install(app)
    app.include_router(read_router, prefix=PREFIX)
    app.include_router(write_router, prefix=PREFIX)
    static = resources.files("controller.api") / "static"
    app.mount("/", StaticFiles(directory=str(static), html=True), name="dashboard")
    return app
