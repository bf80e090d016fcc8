"""structlog set-up: JSON lines for services, readable lines for a terminal."""

from __future__ import annotations

import logging
import sys

import structlog


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: str = "info", json_lines: bool = True) -> None:
    """Configure structlog and the standard library loggers the libraries use.

    The ``ocpp`` and ``websockets`` libraries log every frame at INFO: they are
    kept at WARNING so the service logs decisions and state changes, not traffic.
    """
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # A factory that looks sys.stderr up at each use, and no caching: a logger
        # never holds on to a stream that was replaced (by a test's capture, say).
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    for noisy in ("ocpp", "websockets", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
