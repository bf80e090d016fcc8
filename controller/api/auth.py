"""Bearer tokens and roles: viewer < manager < admin. No token, no access.

Tokens come from the config (``api.tokens``: name, role and the token's
SHA-256, never the token itself) and from the ``HEADROOM_API_TOKENS``
environment variable (``name:role:token`` entries separated by commas, for
orchestrators that inject secrets). A request's token is hashed and compared
in constant time; its name is what the audit log records as who changed what.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "manager", "admin"]
RANK: Mapping[str, int] = {"viewer": 0, "manager": 1, "admin": 2}
ENV_VAR = "HEADROOM_API_TOKENS"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this principal has ``role`` or a higher one."""
        return RANK[self.role] >= RANK[role]


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def parse_env_tokens(text: str) -> list[tuple[str, str, str]]:
    """``name:role:token,...`` → (name, role, sha256); raises ValueError naming the bad entry."""
    found = []
    for i, entry in enumerate(p.strip() for p in text.split(",")):
        if not entry:
            continue
        parts = entry.split(":", 2)
        if len(parts) != 3 or not parts[0] or not parts[2] or parts[1] not in RANK:
            raise ValueError(
                f"{ENV_VAR} entry {i + 1}: expected name:role:token with role viewer, "
                "manager or admin"
            )
        found.append((parts[0], parts[1], sha256_hex(parts[2])))
    return found


class TokenBook:
    """The known tokens, by hash."""

    def __init__(self, entries: Iterable[tuple[str, str, str]]) -> None:
        self._by_hash = {digest: Principal(name, role) for name, role, digest in entries}

    @classmethod
    def from_sources(
        cls, configured: Iterable[tuple[str, str, str]], env: Mapping[str, str] | None = None
    ) -> TokenBook:
        """Tokens from the config and from ``HEADROOM_API_TOKENS``."""
        environ = os.environ if env is None else env
        return cls([*configured, *parse_env_tokens(environ.get(ENV_VAR, ""))])

    def __len__(self) -> int:
        return len(self._by_hash)

    def identify(self, token: str) -> Principal | None:
        """The principal holding ``token``, or None."""
        digest = sha256_hex(token)
        for known, principal in self._by_hash.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None
