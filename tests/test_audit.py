"""The audit log: every decision and command recorded, readable back, surviving a crash."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.audit import AuditLog, AuditQuery, read_audit
from controller.cli import main
from hil.ev import EV
from tests.rig import rig, until


async def test_decisions_and_commands_are_recorded(tmp_path: Path) -> None:
    """A session's fail-safe, its setpoints and the decisions behind them are all in the log."""
    db = tmp_path / "audit.db"
    async with rig(audit_path=str(db)) as r:
        [cp] = r.charge_points
        await cp.plug_in(1, EV(response_delay_s=0.1))
        results = r.controller.dispatcher.results
        await until(lambda: results["Accepted"] >= 2, 5, "fail-safe and setpoint accepted")
        sent = r.controller.dispatcher.sent
    records = list(read_audit(db, AuditQuery()))
    commands = [x for x in records if x["kind"] == "command"]
    decisions = [x for x in records if x["kind"] == "decision"]
    assert len(commands) >= sent >= 2
    assert commands[0]["purpose"] == "TxDefaultProfile"
    assert commands[0]["limit_a"] == 6.0
    tx = [c for c in commands if c["purpose"] == "TxProfile"]
    assert tx[-1]["limit_a"] == 32.0
    assert tx[-1]["status"] == "Accepted"
    assert tx[-1]["transaction_id"] is not None
    assert len(decisions) >= 2
    allocations = [json.loads(d["allocation"]) for d in decisions if d["allocation"]]
    assert ["cp-0/1"] in [list(a) for a in allocations]
    assert any(a.get("cp-0/1") == [32.0, "session max"] for a in allocations)


async def test_audit_cli_filters_and_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`headroom audit` filters by charger and exports JSON lines and CSV."""
    db = tmp_path / "audit.db"
    async with rig(chargers=2, audit_path=str(db)) as r:
        results = r.controller.dispatcher.results
        await until(lambda: results["Accepted"] >= 2, 5, "both fail-safes accepted")
    capsys.readouterr()  # drop the controller's own log lines
    assert main(["audit", "--db", str(db), "--charger", "cp-1", "--format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines
    assert {line["charger"] for line in lines} == {"cp-1"}
    assert main(["audit", "--db", str(db), "--kind", "commands", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("at,charger,connector")
    assert len(out) == 3  # header + one fail-safe per charger
    assert main(["audit", "--db", str(tmp_path / "none.db")]) == 1


def test_committed_records_survive_kill_9(tmp_path: Path) -> None:
    """Records committed before a SIGKILL are all there afterwards (WAL, commit per record)."""
    db = tmp_path / "audit.db"
    script = textwrap.dedent(
        f"""
        import os, signal
        from datetime import UTC, datetime
        from controller.audit import AuditLog
        from controller.model import (CommandResult, CommandStatus, ProfileCommand,
                                      ProfilePurpose)
        log = AuditLog({str(db)!r}, "s")
        for i in range(50):
            cmd = ProfileCommand("cp", 1, ProfilePurpose.TX, 10.0 + i, 1, 11, 60.0, i)
            log.record_command(CommandResult(cmd, CommandStatus.ACCEPTED, 0.01),
                               datetime.now(UTC))
        print("written", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "written"
    assert result.returncode == -9
    records = list(read_audit(db, AuditQuery(kind="commands")))
    assert [r["limit_a"] for r in records] == [10.0 + i for i in range(50)]


def _in_database_file(db: Path, copy: Path) -> int:
    """How many changes the database file itself holds (its WAL left aside)."""
    shutil.copyfile(db, copy)
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        found = conn.execute("SELECT name FROM sqlite_master WHERE name = 'changes'").fetchone()
        return conn.execute("SELECT COUNT(*) FROM changes").fetchone()[0] if found else 0


def _until_in_file(db: Path, tmp_path: Path, count: int) -> None:
    deadline = time.monotonic() + 10
    for n in itertools.count():
        if _in_database_file(db, tmp_path / f"copy-{n}.db") >= count:
            return
        assert time.monotonic() < deadline, f"fewer than {count} records checkpointed"
        time.sleep(0.05)


def test_checkpoints_run_in_the_background_not_on_the_writer(tmp_path: Path) -> None:
    """A record is readable once written (from the WAL), but only the checkpointer thread
    moves it into the database file, once enough records wait or the oldest has waited long
    enough: the writer (the control loop) never runs a checkpoint itself."""
    db = tmp_path / "audit.db"
    at = datetime.now(UTC)
    log = AuditLog(db, "s", checkpoint_s=3600, checkpoint_records=400)
    try:
        for i in range(300):  # past SQLite's automatic checkpoint of 1,000 pages
            log.record_change("ann", "settings", None, {"n": i, "pad": "x" * 4000}, at)
        assert len(list(read_audit(db, AuditQuery(kind="changes")))) == 300
        assert _in_database_file(db, tmp_path / "copy.db") == 0
        for i in range(100):
            log.record_change("ann", "settings", None, {"n": 300 + i}, at)
        _until_in_file(db, tmp_path, 400)  # the 400th record woke the checkpointer
    finally:
        log.close()
    log = AuditLog(db, "s", checkpoint_s=0.2, checkpoint_records=400)
    try:
        log.record_change("bob", "settings", None, {"n": 400}, at)
        _until_in_file(db, tmp_path, 401)  # the oldest record waited 0.2 s
    finally:
        log.close()
