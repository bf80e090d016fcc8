"""Where the controller keeps what it records (``audit:``) and what must survive a
restart (``store:``): SQLite files with a write-ahead log."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from controller.config.base import Strict


class AuditSettings(Strict):
    """Where every decision and command is recorded (SQLite, write-ahead log)."""

    path: Annotated[str, Field(min_length=1)] = "headroom-audit.db"
    fsync: bool = False


class StoreSettings(Strict):
    """Where state that must survive a restart is kept (SQLite, write-ahead log)."""

    path: Annotated[str, Field(min_length=1)] = "headroom-state.db"
    fsync: bool = False
