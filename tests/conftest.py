"""Fixtures shared across test modules: a real Mosquitto broker on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
_BROKER_READY_S = 5.0
_BROKER_STOP_S = 3.0


def _mosquitto_binary() -> str | None:
    """The broker binary: on PATH, or where Debian puts it (sbin is off a user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if Path(candidate).is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class Mosquitto:
    """A Mosquitto broker the test owns; unpacks as ``host, port`` and can be restarted."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.host = LOOPBACK
        self.port = _free_port()
        self._binary = binary
        self._config = folder / "mosquitto.conf"
        self._config.write_text(
            f"listener {self.port} {LOOPBACK}\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
        )
        self._log = folder / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __iter__(self) -> Iterator[str | int]:
        """``host, port = broker``."""
        return iter((self.host, self.port))

    def start(self) -> None:
        """Start the broker and return once it accepts connections on its port."""
        if self._process is not None:
            return
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [self._binary, "-c", str(self._config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + _BROKER_READY_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), 0.2),
            ):
                return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"mosquitto did not start on port {self.port}: {self._log.read_text()}")

    def stop(self) -> None:
        """Stop the broker (every client connection drops); the port stays this broker's."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(_BROKER_STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop and start again on the same port."""
        self.stop()
        self.start()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A fresh Mosquitto on a free loopback port, killed after the test."""
    binary = _mosquitto_binary()
    if binary is None:
        pytest.skip("the mosquitto binary is not installed (.ci/run installs it)")
    broker = Mosquitto(binary, tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """Each test starts from structlog's defaults, whatever a CLI test configured before it."""
    import structlog

    yield
    structlog.reset_defaults()
