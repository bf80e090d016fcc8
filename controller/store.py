"""The state store: what must survive a restart, in an embedded SQLite database.

Operator changes (limits, priorities), sessions, last setpoints and what the
controller learned about each charger and car live here, keyed by a *kind*
(``settings``: :mod:`controller.operator`; ``session/<site>`` and
``route/<site>``: :mod:`controller.persist`) and a key within it; each value is
a JSON object. The modules that own a kind decide its shape.

Durability policy (the same as the audit log's): write-ahead log, every write
committed before it returns, so a committed value survives ``kill -9``; with
``fsync: true`` (``synchronous=FULL``) it also survives a power loss.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
"""


class StateStore:
    """Key/value records by kind; safe to call from the event loop and from threads."""

    def __init__(self, path: str | Path, fsync: bool = False) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.executescript(SCHEMA)

    def put(self, kind: str, key: str, value: Mapping[str, Any], at: datetime) -> None:
        """Store ``value`` under (kind, key), replacing what was there."""
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
        with self._lock:
            self._db.execute(
                "INSERT INTO state (kind, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (kind, key, text, at.isoformat()),
            )

    def write(
        self,
        puts: Iterable[tuple[str, str, Mapping[str, Any]]],
        deletes: Iterable[tuple[str, str]],
        at: datetime,
    ) -> None:
        """Store and forget many values in one transaction: all of them or, on a crash,
        none (one commit, so one flush with ``fsync``)."""
        rows = [
            (kind, key, json.dumps(value, separators=(",", ":"), sort_keys=True), at.isoformat())
            for kind, key, value in puts
        ]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO state (kind, key, value, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, "
                    "updated_at = excluded.updated_at",
                    rows,
                )
                self._db.executemany("DELETE FROM state WHERE kind = ? AND key = ?", list(deletes))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The value stored under (kind, key), or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM state WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return None if row is None else _object(row[0])

    def items(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every value of one kind, by key."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM state WHERE kind = ? ORDER BY key", (kind,)
            ).fetchall()
        return {key: _object(value) for key, value in rows}

    def delete(self, kind: str, key: str) -> None:
        """Forget (kind, key); nothing happens if it is not stored."""
        with self._lock:
            self._db.execute("DELETE FROM state WHERE kind = ? AND key = ?", (kind, key))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"state store holds a non-object value: {text[:80]!r}")
    return value
