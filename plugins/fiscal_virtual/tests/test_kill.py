"""A real SIGKILL in the middle of a command: never a second receipt, never a gap."""

from __future__ import annotations

import io
import json
import os
import re
import selectors
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from mews_bridge_fiscal_virtual.export import write_export
from mews_bridge_fiscal_virtual.verify import verify_export

CHILD = Path(__file__).with_name("kill_child.py")
CHILD_NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def run_child_until_killed(stage: str, state_dir: Path, options: dict, command: dict, marker: str) -> None:
    """Start the child, wait for ``marker`` on its stdout, then SIGKILL it."""
    args = [
        sys.executable,
        str(CHILD),
        stage,
        str(state_dir),
        json.dumps(options),
        json.dumps(command),
        CHILD_NOW.isoformat(),
    ]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=30)
        line = child.stdout.readline().strip() if ready else ""
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        stderr = child.stderr.read()
        child.stdout.close()
        child.stderr.close()
    assert line == marker, stderr
    assert child.returncode == -signal.SIGKILL


def command_json(command_id: str, data: dict) -> dict:
    return {
        "Id": command_id,
        "State": "Pending",
        "CreatedUtc": "2026-03-10T09:00:00Z",
        "Device": {"Id": "dev-1", "Name": "Fiscal", "Type": "FiscalMachine"},
        "Data": data,
    }


async def test_kill_between_commit_and_acknowledgement_issues_no_second_receipt(
    harness, mk, sale_bill, tmp_path
):
    data = mk.legacy(sale_bill())
    options = mk.options | {"receipt_printer": "Front desk printer"}
    state_dir = harness.context("Fiscal").state_dir
    run_child_until_killed("acknowledge", state_dir, options, command_json("cmd-1", data), "COMMITTED")

    harness.clock.now = CHILD_NOW.replace(minute=2)  # the bridge restarts two minutes later
    driver = await harness.driver()
    notes = await driver.recover(mk.job("cmd-1", data, interrupted=True))
    assert re.match(r"^Receipt AT-REG1-2 · code [A-Za-z0-9_-]{11}$", notes)
    assert await driver.execute(mk.job("cmd-1", data)) == notes  # redelivered by getAllActive as well
    assert [e.kind for e in driver.register.store.entries()] == ["START", "SALE"]
    assert harness.devices.runs == []  # recovery does not print a second copy

    assert (await driver.execute(mk.job("cmd-2", mk.legacy(sale_bill("bill-2", "1002"))))).startswith(
        "Receipt AT-REG1-3"
    )
    write_export(driver.register, tmp_path / "e.zip", harness.clock())
    assert verify_export(tmp_path / "e.zip").receipts == 3


async def test_kill_after_signing_before_commit_leaves_nothing_behind(harness, mk, sale_bill, tmp_path):
    data = mk.legacy(sale_bill())
    state_dir = harness.context("Fiscal").state_dir
    run_child_until_killed("commit", state_dir, mk.options, command_json("cmd-1", data), "SIGNED")

    harness.clock.now = CHILD_NOW.replace(minute=2)
    driver = await harness.driver()
    assert [e.kind for e in driver.register.store.entries()] == ["START"]  # the signed entry died uncommitted
    notes = await driver.recover(mk.job("cmd-1", data, interrupted=True))
    assert notes.startswith("Receipt AT-REG1-2 · code ")  # the same number: no gap
    write_export(driver.register, tmp_path / "e.zip", harness.clock())
    assert verify_export(io.BytesIO((tmp_path / "e.zip").read_bytes())).receipts == 2
