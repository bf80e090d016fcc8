"""OCPP security profiles 1 (Basic auth) and 2 (TLS + Basic auth) at the websocket handshake."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.headers import build_authorization_basic
from websockets.typing import Subprotocol

import controller.ocpp.handshake as handshake_module
from controller.clock import SystemClock
from controller.model import ChargerBooted
from controller.ocpp.auth import (
    VerifiedPasswords,
    check_password,
    check_password_hash,
    hash_password,
    new_password,
    verify_password,
)
from controller.ocpp.server import OcppServer, tls_context
from tests.ocpp_site import running_site, wait_until

PASSWORD = "correct-horse-battery"  # 21 characters: within OCPP's 16–40
OCPP16 = Subprotocol("ocpp1.6")


@pytest.fixture(scope="module")
def stored() -> str:
    """One hash of PASSWORD, made once (scrypt is deliberately slow)."""
    return hash_password(PASSWORD)


def credentials_for(stored: str) -> handshake_module.Credentials:
    """cp-1 needs PASSWORD; every other known charger connects without one."""
    return {"cp-1": stored}.get


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1, made with the openssl binary."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def client_tls(cert: Path) -> ssl.SSLContext:
    """A client context that trusts only the test certificate."""
    return ssl.create_default_context(cafile=str(cert))


# --- hashing -----------------------------------------------------------------


def test_hash_verifies_the_password_and_nothing_else(stored: str) -> None:
    """The stored form names its scheme, hides the password and accepts only that password."""
    assert stored.startswith("scrypt$n=16384,r=8,p=1$")
    assert PASSWORD not in stored
    check_password_hash(stored)
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "x")
    assert not verify_password(stored, "")


def test_each_hash_has_its_own_salt() -> None:
    """Two hashes of one password differ, and each verifies it."""
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second
    assert verify_password(second, PASSWORD)


@pytest.mark.parametrize("plain", ["x" * 15, "x" * 41, "pässwörd-pässwörd", "tab\there-tab-here"])
def test_passwords_outside_the_ocpp_rules_are_refused(plain: str) -> None:
    """hash_password refuses passwords shorter than 16, longer than 40, or not printable ASCII."""
    with pytest.raises(ValueError, match="OCPP password"):
        hash_password(plain)


@pytest.mark.parametrize(
    "bad",
    [
        "plain-text-password",
        "bcrypt$x$y$z",
        "scrypt$n=16384,r=8$c2FsdA$aGFzaA",
        "scrypt$n=1000,r=8,p=1$c2FsdA$" + "A" * 43,
        "scrypt$n=16384,r=8,p=1$c2FsdA$short",
        "scrypt$n=16384,r=8,p=1$!!$" + "A" * 43,
    ],
)
def test_unreadable_stored_hashes_are_config_errors(bad: str) -> None:
    """A malformed stored hash raises ValueError: a config error, not a wrong password."""
    with pytest.raises(ValueError, match=r"hash|scrypt"):
        check_password_hash(bad)
    with pytest.raises(ValueError, match=r"hash|scrypt"):
        verify_password(bad, PASSWORD)


def test_new_passwords_are_valid_and_distinct() -> None:
    """A generated password has the asked length, passes the OCPP rules and never repeats."""
    passwords = {new_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) == 32 for p in passwords)
    assert len(new_password(16)) == 16
    for password in passwords:
        check_password(password)
    with pytest.raises(ValueError, match="OCPP allows"):
        new_password(41)


def test_verified_passwords_remember_only_what_matched(stored: str) -> None:
    """The cache knows a verified password for its hash, not another password or hash."""
    verified = VerifiedPasswords()
    assert not verified.knows(stored, PASSWORD)
    verified.remember(stored, PASSWORD)
    assert verified.knows(stored, PASSWORD)
    assert not verified.knows(stored, PASSWORD + "x")
    assert not verified.knows(hash_password(PASSWORD), PASSWORD)


# --- profile 1: Basic auth over ws:// -----------------------------------------------


async def test_right_password_is_admitted(stored: str) -> None:
    """A charger with its stored hash connects and boots with the right password."""
    async with running_site(credentials=credentials_for(stored)) as site:
        await site.charger("cp-1", password=PASSWORD)
        await wait_until(lambda: bool(site.of(ChargerBooted)))


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        (None, "no credentials: HTTP Basic auth is required"),
        ("wrong-password-wrong", "wrong password"),
        ("short", "wrong password"),
    ],
)
async def test_wrong_or_missing_password_is_refused_with_401(
    stored: str, password: str | None, reason: str
) -> None:
    """No or a wrong password: HTTP 401 with a Basic challenge, no event, a log without it."""
    async with running_site(credentials=credentials_for(stored)) as site:
        with capture_logs() as logs, pytest.raises(InvalidStatus) as refused:
            await site.charger("cp-1", password=password)
        response = refused.value.response
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert site.events == []
        [entry] = [e for e in logs if e["event"] == "ocpp_connection_refused"]
        assert (entry["charger_id"], entry["reason"], entry["http_status"]) == (
            "cp-1",
            reason,
            401,
        )
        assert all(PASSWORD not in repr(e) and "wrong-password" not in repr(e) for e in logs)


async def test_username_must_be_the_charger_id(stored: str) -> None:
    """The right password under another username is refused: OCPP's username is the id."""
    async with running_site(credentials=credentials_for(stored)) as site:
        header = {"Authorization": build_authorization_basic("cp-2", PASSWORD)}
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{site.url}/cp-1", subprotocols=[OCPP16], additional_headers=header)
        assert refused.value.response.status_code == 401


async def test_a_charger_without_a_stored_hash_needs_no_password(stored: str) -> None:
    """credentials() returning None lets that charger in without Basic auth."""
    async with running_site(credentials=credentials_for(stored)) as site:
        await site.charger("cp-2")
        assert site.server.connected == {"cp-2"}


async def test_a_reconnect_costs_no_second_scrypt(
    stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password verified once is remembered: reconnecting does not hash it again."""
    calls: list[str] = []

    def counting(stored_hash: str, plain: str) -> bool:
        calls.append(plain)
        return verify_password(stored_hash, plain)

    monkeypatch.setattr(handshake_module, "verify_password", counting)
    async with running_site(credentials=credentials_for(stored)) as site:
        sim = await site.charger("cp-1", password=PASSWORD)
        await sim.reconnect()
        await wait_until(lambda: site.server.connected == {"cp-1"})
    assert len(calls) == 1


# --- profile 2: TLS + Basic auth over wss:// ------------------------------------------


async def test_tls_with_basic_auth(stored: str, certificate: tuple[Path, Path]) -> None:
    """Over wss:// with a self-signed certificate: the right password boots, none gets 401."""
    cert, key = certificate
    context = tls_context(cert, key)
    async with running_site("wss", credentials=credentials_for(stored), ssl=context) as site:
        await site.charger("cp-1", password=PASSWORD, ssl=client_tls(cert))
        await wait_until(lambda: bool(site.of(ChargerBooted)))
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{site.url}/cp-1", subprotocols=[OCPP16], ssl=client_tls(cert))
        assert refused.value.response.status_code == 401


async def test_tls_server_refuses_plain_websockets(certificate: tuple[Path, Path]) -> None:
    """A ws:// client cannot talk to the TLS server: the handshake fails, no charger connects."""
    cert, key = certificate
    async with running_site("wss", ssl=tls_context(cert, key)) as site:
        plain = f"ws://127.0.0.1:{site.server.port}/ocpp/cp-1"
        with pytest.raises(Exception):  # noqa: B017, PT011  # the exact error is the OS's
            await connect(plain, subprotocols=[OCPP16], open_timeout=2)
        assert site.server.connected == frozenset()


def test_tls_below_1_2_is_refused(certificate: tuple[Path, Path]) -> None:
    """A server context that would accept TLS below 1.2 is a configuration error."""
    cert, key = certificate
    context = tls_context(cert, key)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED  # whatever OpenSSL still speaks
    with pytest.raises(ValueError, match=r"TLS 1\.2"):
        OcppServer(lambda e: None, SystemClock(), lambda c: True, ssl=context)
