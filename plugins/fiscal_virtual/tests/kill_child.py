"""Child process of test_kill.py: runs one fiscal command and stops where the parent kills it.

Usage: ``kill_child.py STAGE STATE_DIR OPTIONS_JSON COMMAND_JSON NOW_ISO`` where STAGE is

* ``acknowledge``: the receipt is committed, the printer hangs, the command is never acknowledged;
* ``commit``: the receipt is signed and inserted, but its transaction is never committed.

The child prints a marker line when it reaches the stage, then waits to be killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from mews_bridge import CommandJob, LocalDevices
from mews_bridge.mews.models import DeviceCommand
from mews_bridge.testing import instance_context
from mews_bridge_fiscal_virtual.driver import FiscalVirtualDriver
from mews_bridge_fiscal_virtual.journal import Entry, JournalStore


class HangingPrinter(LocalDevices):
    async def run(self, device_name: str, data: dict[str, Any]) -> str | None:
        print("COMMITTED", flush=True)
        await asyncio.Event().wait()
        return None


def hang_before_commit() -> None:
    insert = JournalStore.insert

    def insert_and_hang(self: JournalStore, entry: Entry) -> None:
        insert(self, entry)
        if entry.kind == "SALE":
            print("SIGNED", flush=True)
            time.sleep(60)

    JournalStore.insert = insert_and_hang  # type: ignore[method-assign]


async def main(stage: str, state_dir: str, options: str, command: str, now: str) -> None:
    if stage == "commit":
        hang_before_commit()
    ctx = instance_context(Path(state_dir), "Fiscal", devices=HangingPrinter())
    driver = FiscalVirtualDriver(ctx, FiscalVirtualDriver.Options.model_validate(json.loads(options)))
    moment = datetime.fromisoformat(now)
    driver.clock = lambda: moment
    await driver.setup()
    parsed = DeviceCommand.model_validate(json.loads(command))

    async def progress(_: float) -> None:
        return None

    data = FiscalVirtualDriver.data_model().model_validate(parsed.data)
    await driver.execute(CommandJob(parsed, data, progress))
    print("ACKNOWLEDGED", flush=True)  # never reached: the parent kills first


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
