"""Serving the API with uvicorn inside the controller's asyncio loop.

``uvicorn.Server(...).serve()`` runs as one task beside the sites; uvicorn's
own signal handlers are disabled so the CLI's SIGINT/SIGTERM handling stays
in charge. TLS when ``api.tls_cert_file`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

import structlog
import uvicorn

from controller.api.app import create_app
from controller.api.auth import TokenBook
from controller.config import ApiSettings
from controller.service import SiteController

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the CLI owns the signals
        return None


def tokens_for(settings: ApiSettings) -> TokenBook:
    """The configured tokens plus those of ``HEADROOM_API_TOKENS``."""
    return TokenBook.from_sources((t.name, t.role, t.token_sha256) for t in settings.tokens)


class ApiServer:
    """The HTTP API and dashboard, started and stopped with the sites."""

    def __init__(
        self, settings: ApiSettings, sites: Mapping[str, SiteController], tokens: TokenBook
    ) -> None:
        config = uvicorn.Config(
            create_app(sites, tokens),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ssl_certfile=settings.tls_cert_file,
            ssl_keyfile=settings.tls_key_file,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self.scheme = "https" if settings.tls_cert_file else "http"

    async def start(self) -> None:
        """Serve in the background; returns once the socket listens."""
        self._task = asyncio.create_task(self._server.serve(), name="api")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start (port in use)
                raise RuntimeError("the API server stopped before it started")
            await asyncio.sleep(0.02)
        log.info("api serving", url=self.url)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        servers = self._server.servers
        if not servers:
            return int(self._server.config.port)
        sock = servers[0].sockets[0]
        return int(sock.getsockname()[1])

    @property
    def url(self) -> str:
        host = self._server.config.host
        return f"{self.scheme}://{host}:{self.port}/"

    async def stop(self) -> None:
        """Stop serving; open streams are closed."""
        if self._task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except TimeoutError:
                self._task.cancel()
                await self._task
        self._task = None
