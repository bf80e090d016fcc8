"""Schemathesis fuzzes the API from its own OpenAPI spec: no input may cause a 5xx.

The site's controller is built but not started (no sockets): every route reads
or changes real state, store and audit log; the stream is left out (it never
ends). Bounded to run in CI in seconds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from controller.api.app import create_app
from controller.service import SiteController
from tests.api_site import BOOK, auth
from tests.rig import config_for

_DIR = Path(tempfile.mkdtemp(prefix="headroom-fuzz-"))
_CONFIG = config_for(
    1502,
    chargers=2,
    audit_path=str(_DIR / "audit.db"),
    config_keys={
        "store": {"path": str(_DIR / "state.db")},
        "groups": [{"id": "feeder", "max_current_a": 60}],
    },
)
APP = create_app({"t": SiteController(_CONFIG)}, BOOK)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP).exclude(path_regex="/stream$")


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_causes_a_server_error(case: schemathesis.Case) -> None:
    """Whatever the body, query, path or headers, the answer is never a 5xx."""
    case.call_and_validate(headers=auth("admin"), checks=[not_a_server_error])
