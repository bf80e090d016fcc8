"""Charger passwords for OCPP security profiles 1 and 2 (HTTP Basic auth), stored hashed.

A stored credential is a self-describing string,
``scrypt$n=16384,r=8,p=1$<salt>$<hash>`` (salt and hash in unpadded base64),
so the cost can rise later without breaking the hashes already in configs.
The plain password never leaves the handshake: configs hold hashes, logs
hold neither.

OCPP sets the length: 16 to 40 characters (1.6 security whitepaper,
2.0.1 ``BasicAuthPassword``). :func:`hash_password` refuses others, so a
config cannot hold a password the charger side may not send.

Pure apart from the random salt; no sockets, no files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

MIN_PASSWORD_CHARS = 16
MAX_PASSWORD_CHARS = 40

SCHEME = "scrypt"
SCRYPT_N = 2**14  # 16 MiB and ~50 ms per hash here: slow for guessing, fine for a handshake
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
_MAX_MEMORY_BYTES = 64 * 1024 * 1024  # room for n·r·128 B = 16 MiB at the default cost


def hash_password(plain: str) -> str:
    """The stored form of ``plain`` (16–40 characters, as OCPP demands), with a fresh salt."""
    check_password(plain)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(plain, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    params = f"n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}"
    return "$".join((SCHEME, params, _b64(salt), _b64(digest)))


def new_password(chars: int = 32) -> str:
    """A fresh random password of ``chars`` characters from ``A–Z a–z 0–9 - _``.

    Those characters are printable ASCII and fit OCPP 2.0.1's
    ``identifierString`` too, so any charger can store and send it.
    """
    if not MIN_PASSWORD_CHARS <= chars <= MAX_PASSWORD_CHARS:
        raise ValueError(f"{chars} characters: OCPP allows {MIN_PASSWORD_CHARS} to 40")
    return secrets.token_urlsafe(chars)[:chars]


def check_password(plain: str) -> None:
    """Raise ``ValueError`` (saying why, not what) unless ``plain`` is a valid OCPP password."""
    if not MIN_PASSWORD_CHARS <= len(plain) <= MAX_PASSWORD_CHARS:
        raise ValueError(
            f"an OCPP password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters,"
            f" this one {len(plain)}"
        )
    if not plain.isprintable() or not plain.isascii():
        raise ValueError("an OCPP password holds printable ASCII characters only")


def check_password_hash(stored: str) -> None:
    """Raise ``ValueError`` saying what is wrong unless ``stored`` is a hash we can verify."""
    _parse(stored)


def verify_password(stored: str, plain: str) -> bool:
    """True when ``plain`` is the password ``stored`` was made from (constant-time compare).

    A malformed ``stored`` raises ``ValueError``: that is a config error, not
    a wrong password.
    """
    n, r, p, salt, expected = _parse(stored)
    if not MIN_PASSWORD_CHARS <= len(plain) <= MAX_PASSWORD_CHARS:
        return False  # no stored hash comes from such a password: spend no hash on it
    return hmac.compare_digest(_scrypt(plain, salt, n, r, p), expected)


def _scrypt(plain: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """The scrypt digest of the UTF-8 password."""
    return hashlib.scrypt(
        plain.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAX_MEMORY_BYTES, dklen=HASH_BYTES
    )


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """The cost parameters, salt and digest of a stored hash."""
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != SCHEME:
        raise ValueError(f"a password hash reads '{SCHEME}$n=…,r=…,p=…$<salt>$<hash>'")
    try:
        params = dict(item.split("=", 1) for item in parts[1].split(","))
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
        salt, digest = _unb64(parts[2]), _unb64(parts[3])
    except (KeyError, ValueError, binascii.Error) as exc:
        raise ValueError(f"a password hash has unreadable parameters: {exc}") from exc
    if n < 2 or n & (n - 1) or n * r * 128 > _MAX_MEMORY_BYTES or not (r > 0 and p > 0):
        raise ValueError(f"scrypt parameters out of range: n={n}, r={r}, p={p}")
    if not salt or len(digest) != HASH_BYTES:
        raise ValueError("a password hash needs a salt and a 32-byte digest")
    return n, r, p, salt, digest


def _b64(data: bytes) -> str:
    """Unpadded standard base64."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    """Decode unpadded standard base64 (strictly: stray characters are an error)."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


class VerifiedPasswords:
    """Passwords already verified, kept as a keyed SHA-256, so a reconnect costs no scrypt.

    A depot of chargers that reconnect together after a network blip would
    otherwise cost one scrypt (~50 ms of CPU) each. The key is random per
    process and the entry is keyed by the stored hash, so a changed hash
    (a new password in the config) is verified afresh.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._known: dict[str, bytes] = {}

    def knows(self, stored: str, plain: str) -> bool:
        """True when ``plain`` was verified against ``stored`` before (constant-time compare)."""
        known = self._known.get(stored)
        return known is not None and hmac.compare_digest(known, self._mac(plain))

    def remember(self, stored: str, plain: str) -> None:
        """Record that ``plain`` matched ``stored``."""
        self._known[stored] = self._mac(plain)

    def _mac(self, plain: str) -> bytes:
        """The keyed digest of a password."""
        return hmac.digest(self._key, plain.encode(), "sha256")
