"""The controller's network endpoints: OCPP for chargers (``ocpp:``), Prometheus
(``metrics:``), MQTT telemetry (``telemetry:``) and the HTTP API (``api:``)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from controller.config.base import Strict, check_tls_files


class OcppSettings(Strict):
    """The OCPP websocket endpoint chargers connect to.

    With ``tls_cert_file`` (and ``tls_key_file`` unless the key is in the same
    file) the endpoint is ``wss://`` (security profile 2); chargers with a
    ``password_hash`` must authenticate with HTTP Basic auth (profiles 1 and 2).
    """

    host: str = "0.0.0.0"
    port: Annotated[int, Field(ge=0, le=65535)] = 9000
    admit_unknown: bool = False
    call_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    meter_values_interval_s: Annotated[int, Field(ge=0, le=3600)] = 10
    composite_check: bool = True
    """Check accepted setpoints against each charger's GetCompositeSchedule."""
    composite_check_interval_s: Annotated[float, Field(ge=1, le=86400)] = 300.0
    composite_tolerance_a: Annotated[float, Field(ge=0.1, le=10)] = 0.5
    tls_cert_file: Annotated[str, Field(min_length=1)] | None = None
    tls_key_file: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        check_tls_files("ocpp", self.tls_cert_file, self.tls_key_file)
        if self.tls_key_file is not None and self.tls_cert_file is None:
            raise ValueError("ocpp.tls_key_file needs ocpp.tls_cert_file")
        return self


class MetricsSettings(Strict):
    """Prometheus text at http://HOST:PORT/metrics."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9100


class TelemetrySettings(Strict):
    """MQTT telemetry: site state each decision and events, under PREFIX/SITE/."""

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    prefix: Annotated[str, Field(min_length=1, pattern=r"^[^#+]+$")] = "headroom"
    client_id: str | None = None
    username: str | None = None
    password: str | None = None


class ApiToken(Strict):
    """One bearer token of the HTTP API: its name (audited as who), role and SHA-256."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    role: Literal["viewer", "manager", "admin"]
    token_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ApiSettings(Strict):
    """The HTTP API and dashboard at http(s)://HOST:PORT/ (TLS with a certificate)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    tokens: list[ApiToken] = Field(default_factory=list)
    tls_cert_file: Annotated[str, Field(min_length=1)] | None = None
    tls_key_file: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        check_tls_files("api", self.tls_cert_file, self.tls_key_file)
        if (self.tls_key_file is None) != (self.tls_cert_file is None):
            raise ValueError("api.tls_cert_file and api.tls_key_file go together")
        names = [t.name for t in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("api.tokens: names must differ (the audit log records them)")
        return self
