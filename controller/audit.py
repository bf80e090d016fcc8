"""The audit log: every decision, every command and every operator change, in SQLite.

Operators use it after the fact (a billing dispute, a tripped breaker): why
did this charger get 8 A at 18:02, and did it accept? Who lowered the limit?

Durability policy:

- **Write-ahead, committed before the call returns.** The database runs in
  WAL mode and each record is its own transaction, committed by its
  ``record_*`` call on the caller's thread; nothing is queued in memory. A
  record whose call has returned is in the WAL file (in the operating
  system's page cache at least), so a crash of the process (``kill -9``
  included) loses none: the next reader recovers it from the WAL.
- **fsync: false (default, ``synchronous=NORMAL``).** A commit writes without
  flushing. A background thread (:class:`_Checkpointer`, its own connection)
  checkpoints the WAL :data:`CHECKPOINT_S` seconds after the oldest record
  not yet checkpointed was written, or once :data:`CHECKPOINT_RECORDS`
  records wait; a checkpoint flushes the WAL to disk, copies it into the
  database file and flushes that. So a power loss or kernel crash loses at
  most the records of the last :data:`CHECKPOINT_S` seconds (longer only
  while a reader holds an older snapshot of the log, which ``headroom
  audit`` and the API do for one query: a checkpoint held back is tried
  again every :data:`RETRY_S`).
- **fsync: true (``synchronous=FULL``).** Every commit also flushes the WAL
  before its call returns: a record survives a power loss as soon as it is
  written, at the price of a disk flush per record on the caller's thread
  (the control loop's): 0.2–0.6 ms each at the median on this project's test
  machine, 2–5 ms while other work keeps its disk busy.

The writing connection never checkpoints (``wal_autocheckpoint=0``), so the
control loop never waits for one; it flushes only the new WAL header on the
first commit after a checkpoint (SQLite's guard against reordered writes),
once per checkpoint. Measured in a 60 s ``headroom demo`` (10 chargers, ~100
decisions and ~200 commands): see docs/benchmarks.md, "Audit log".

To keep the log readable and small, a decision's allocation is stored only
when it differs from the one stored before it (``allocation`` is NULL when it
is unchanged); the decision row itself is always written.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
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


CHECKPOINT_S = 10.0
"""A record is flushed to disk by a checkpoint at most this long after it was written."""
CHECKPOINT_RECORDS = 250
"""…or sooner, once this many records wait (about SQLite's own 1,000-page threshold)."""
RETRY_S = 0.5
"""How soon a checkpoint that a reader held back is tried again."""

Allocation = tuple[tuple[str, float, str], ...]


def _allocation(decision: Decision) -> Allocation:
    return tuple((key, t.limit_a, t.reason) for key, t in sorted(decision.targets.items()))


def _allocation_json(allocation: Allocation) -> str:
    return json.dumps({key: [a, why] for key, a, why in allocation}, separators=(",", ":"))


class _Checkpointer(threading.Thread):
    """Checkpoints the WAL on its own connection, off the writer's thread.

    A checkpoint runs once ``records`` records are waiting, or ``interval_s``
    after the first one waited, whichever comes first. It is PASSIVE: it neither
    waits for nor blocks the writer; it flushes the WAL before copying it into
    the database file and flushes that file after.

    Each complete checkpoint lets the next commit start the WAL over, and SQLite
    flushes the new WAL header then, on the writer's thread: checkpointing
    rarely (not every second) keeps those flushes rare.
    """

    def __init__(self, path: str, records: int, interval_s: float) -> None:
        super().__init__(name="audit-checkpoint", daemon=True)
        self._path = path
        self._records = records
        self._interval_s = interval_s
        self._waiting = 0
        self._since: float | None = None  # when the oldest unflushed record was written
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._done = False
        self.checkpoints = 0

    def written(self) -> None:
        """One more record in the WAL."""
        with self._mutex:
            self._waiting += 1
            if self._since is None:
                self._since = time.monotonic()
                self._wake.set()  # start the clock
            if self._waiting >= self._records:
                self._wake.set()

    def run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA synchronous=NORMAL")  # flush the WAL, then the database file
            while not self._done:
                with self._mutex:
                    since, waiting = self._since, self._waiting
                    due = None if since is None else since + self._interval_s - time.monotonic()
                    ready = waiting >= self._records or (due is not None and due <= 0)
                    if ready:
                        self._waiting, self._since = 0, None
                if not ready:
                    self._wake.wait(due)
                    self._wake.clear()
                    continue
                _, in_log, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.checkpoints += 1
                if copied < in_log:  # a reader's older snapshot held part back: try again soon
                    with self._mutex:
                        retry_at = time.monotonic() - self._interval_s + RETRY_S
                        self._since = min(self._since or retry_at, retry_at)
        finally:
            db.close()

    def stop(self) -> None:
        self._done = True
        self._wake.set()
        self.join()


class AuditLog:
    """Appends decisions and commands; one instance per site and database file."""

    def __init__(
        self,
        path: str | Path,
        site: str,
        fsync: bool = False,
        checkpoint_s: float = CHECKPOINT_S,
        checkpoint_records: int = CHECKPOINT_RECORDS,
    ) -> None:
        self.site = site
        self._lock = threading.Lock()  # the loop writes decisions; API threads write changes
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job, not ours
        self._db.executescript(SCHEMA)
        self._last_allocation: Allocation | None = None
        self._checkpointer = _Checkpointer(str(path), checkpoint_records, checkpoint_s)
        self._checkpointer.start()

    def _insert(self, sql: str, values: tuple[Any, ...]) -> None:
        """One record, committed before this returns (autocommit)."""
        with self._lock:
            self._db.execute(sql, values)
            self._checkpointer.written()

    def record_decision(self, decision: Decision, at: datetime) -> None:
        """Append one decision (the allocation only if it changed)."""
        allocation = _allocation(decision)
        stored = None if allocation == self._last_allocation else _allocation_json(allocation)
        self._last_allocation = allocation
        base = decision.base_load_a
        self._insert(
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
        self._insert(
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
        self._insert(
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
        """Stop the checkpointer and close (everything written is already committed)."""
        self._checkpointer.stop()
        with self._lock:
            self._db.close()  # the last connection to close checkpoints the rest


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
