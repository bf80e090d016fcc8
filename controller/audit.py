"""The audit log: every decision and every command, appended to SQLite.

Operators use it after the fact (a billing dispute, a tripped breaker): why
did this charger get 8 A at 18:02, and did it accept?

Durability policy: the database runs in write-ahead-log mode and every
record is committed as it is written, before the loop moves on. A committed
record survives a crash of the process (kill -9 included). With
``fsync: true`` (``synchronous=FULL``) it also survives a power loss, at the
price of a disk flush per record; the default (``synchronous=NORMAL``) leaves
the flush to the WAL checkpoint.

To keep the log readable and small, a decision's allocation is stored only
when it differs from the one stored before it (``allocation`` is NULL when it
is unchanged); the decision row itself is always written.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.decide import Decision
from controller.model import CommandResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    site TEXT NOT NULL,
    mode TEXT NOT NULL,
    reason TEXT NOT NULL,
    base_l1_a REAL, base_l2_a REAL, base_l3_a REAL,
    sessions INTEGER NOT NULL,
    allocation TEXT
);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    site TEXT NOT NULL,
    charger TEXT NOT NULL,
    connector INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    limit_a REAL NOT NULL,
    transaction_id INTEGER,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    latency_ms REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    site TEXT NOT NULL,
    who TEXT NOT NULL,
    resource TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS changes_at ON changes (at);
CREATE INDEX IF NOT EXISTS decisions_at ON decisions (at);
CREATE INDEX IF NOT EXISTS commands_at ON commands (at);
CREATE INDEX IF NOT EXISTS commands_charger ON commands (charger, at);
"""


def _allocation_json(decision: Decision) -> str:
    return json.dumps(
        {key: [t.limit_a, t.reason] for key, t in sorted(decision.targets.items())},
        separators=(",", ":"),
    )


class AuditLog:
    """Appends decisions and commands; one instance per site and database file."""

    def __init__(self, path: str | Path, site: str, fsync: bool = False) -> None:
        self.site = site
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.executescript(SCHEMA)
        self._last_allocation: str | None = None

    def record_decision(self, decision: Decision, at: datetime) -> None:
        """Append one decision (the allocation only if it changed)."""
        allocation = _allocation_json(decision)
        stored = None if allocation == self._last_allocation else allocation
        self._last_allocation = allocation
        base = decision.base_load_a
        self._db.execute(
            "INSERT INTO decisions (at, site, mode, reason, base_l1_a, base_l2_a, base_l3_a,"
            " sessions, allocation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at.isoformat(),
                self.site,
                decision.mode.value,
                decision.mode_reason,
                round(base[0], 2),
                round(base[1], 2),
                round(base[2], 2),
                len(decision.targets),
                stored,
            ),
        )

    def record_command(self, result: CommandResult, at: datetime) -> None:
        """Append one command with its outcome."""
        c = result.command
        self._db.execute(
            "INSERT INTO commands (at, site, charger, connector, purpose, limit_a, transaction_id,"
            " status, detail, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at.isoformat(),
                self.site,
                c.charger_id,
                c.connector_id,
                c.purpose.value,
                c.limit_a,
                c.transaction_id,
                result.status.value,
                result.detail,
                round(result.latency_s * 1000, 2),
            ),
        )

    def record_change(self, who: str, resource: str, before: Any, after: Any, at: datetime) -> None:
        """Append one operator change: who (the API token's name), what, before and after."""
        self._db.execute(
            "INSERT INTO changes (at, site, who, resource, before, after)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                at.isoformat(),
                self.site,
                who,
                resource,
                json.dumps(before, sort_keys=True, separators=(",", ":")),
                json.dumps(after, sort_keys=True, separators=(",", ":")),
            ),
        )

    def close(self) -> None:
        """Close the database (everything written is already committed)."""
        self._db.close()


@dataclass(frozen=True)
class AuditQuery:
    """Which records to read back."""

    since: str | None = None
    until: str | None = None
    charger: str | None = None
    kind: str = "all"  # all | decisions | commands | changes


def read_audit(path: str | Path, query: AuditQuery) -> Iterator[dict[str, Any]]:
    """Records in time order, as dicts with a ``kind`` key."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        rows: list[dict[str, Any]] = []
        if query.kind in ("all", "commands"):
            rows += _select(db, "commands", query, charger_column="charger")
        if query.kind in ("all", "decisions") and query.charger is None:
            rows += _select(db, "decisions", query)
        if query.kind in ("all", "changes") and query.charger is None and _has(db, "changes"):
            rows += _select(db, "changes", query)
        rows.sort(key=lambda r: (r["at"], r["kind"]))
        yield from rows
    finally:
        db.close()


def _has(db: sqlite3.Connection, table: str) -> bool:
    """Whether the table exists (a log written before it was added has none)."""
    found = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,))
    return found.fetchone() is not None


def _select(
    db: sqlite3.Connection, table: str, query: AuditQuery, charger_column: str | None = None
) -> list[dict[str, Any]]:
    where, args = [], []
    if query.since:
        where.append("at >= ?")
        args.append(query.since)
    if query.until:
        where.append("at < ?")
        args.append(query.until)
    if query.charger and charger_column:
        where.append(f"{charger_column} = ?")
        args.append(query.charger)
    sql = f"SELECT * FROM {table}" + (f" WHERE {' AND '.join(where)}" if where else "")
    kind = table.rstrip("s")
    return [{"kind": kind, **dict(row)} for row in db.execute(sql, args)]


def format_records(records: Sequence[dict[str, Any]], fmt: str) -> str:
    """Records as ``json`` (one object per line), ``csv`` or a readable ``table``."""
    if fmt == "json":
        return "".join(json.dumps(r) + "\n" for r in records)
    if fmt == "csv":
        fields = sorted({k for r in records for k in r})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    lines = []
    for r in records:
        if r["kind"] == "change":
            lines.append(
                f"{r['at']}  change    {r['who']} {r['resource']}: {r['before']} → {r['after']}"
            )
        elif r["kind"] == "command":
            lines.append(
                f"{r['at']}  command   {r['charger']}/{r['connector']} {r['purpose']} "
                f"{r['limit_a']} A → {r['status']} ({r['latency_ms']} ms) {r['detail']}"
            )
        else:
            lines.append(
                f"{r['at']}  decision  mode={r['mode']} sessions={r['sessions']} "
                f"base=({r['base_l1_a']}, {r['base_l2_a']}, {r['base_l3_a']}) A "
                f"{r['reason']} {r['allocation'] or ''}".rstrip()
            )
    return "\n".join(lines) + ("\n" if lines else "")
