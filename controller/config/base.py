"""What every config section shares: the strict model, the IEC 61851 minimum, the TLS check."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

IEC_61851_MIN_CURRENT_A = 6.0  # below it the EV stops: a fail-safe is 0 or at least this


class Strict(BaseModel):
    """A config section: unknown keys are errors (a typo is never a silently ignored
    setting), and a loaded config does not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_tls_files(section: str, cert_file: str | None, key_file: str | None) -> None:
    """Refuse a certificate or key path that names no file, with its key path."""
    for key, path in (("tls_cert_file", cert_file), ("tls_key_file", key_file)):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{section}.{key}: no file at {path}")
