"""Failure paths of the command pipeline, each against the real Mews simulator.

Each test asserts the behaviour the README promises in a case a review found broken, now fixed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import sys
from typing import Any

import pytest
from scripted_plugin import ScriptedCutter, ScriptedPrinter  # loaded by conftest

import mews_bridge
from mews_bridge import CommandJob, DeviceDriver
from mews_bridge.bridge import JOURNAL_FILE
from mews_bridge.journal import Journal
from mews_bridge.testing import (
    bridge_settings,
    device,
    running_bridge,
    wait_for,
    wait_for_final_state,
)

# -- drivers made for these tests ---------------------------------------------------------------------


class PlainCutter(ScriptedCutter):
    """A key cutter that is not replay-safe and keeps no records of its own (the default ``recover``)."""

    name = "plain_cutter"
    recover = DeviceDriver.recover


class SlowSetupCutter(ScriptedCutter):
    """A key cutter whose connection takes a while to open (a USB adapter that enumerates slowly)."""

    name = "slow_setup_cutter"

    async def setup(self) -> None:
        await asyncio.sleep(1.5)


class LinkLossPrinter(ScriptedPrinter):
    """A printer whose transport cancels the pending request future when the link drops, a common
    pattern in protocol code; ``execute`` then sees ``CancelledError`` that Mews did not ask for."""

    name = "link_loss_printer"

    async def execute(self, job: CommandJob[Any]) -> str | None:
        script = json.loads(base64.b64decode(job.data.file_data))
        if script.get("link_lost"):
            self._log(f"start {job.id}")
            reply = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().call_later(0.05, reply.cancel)  # the reader task saw EOF
            await reply
        return await super().execute(job)


@mews_bridge.hookimpl
def register_drivers(register: Any) -> None:
    register(PlainCutter)
    register(SlowSetupCutter)
    register(LinkLossPrinter)


FAILURE_PATHS_PLUGIN = sys.modules[__name__]


# -- helpers ------------------------------------------------------------------------------------------


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "runs.log"
    path.touch()
    return path


def runs(log_file, command_id):
    return [line.split()[0] for line in log_file.read_text().splitlines() if line.endswith(command_id)]


def make_settings(sim, tmp_path, log_file, entries, **bridge):
    return bridge_settings(
        sim,
        tmp_path / "state",
        devices=[device(name, mews, driver, {"log_file": log_file}) for name, mews, driver in entries],
        bridge=bridge,
    )


NAMES = {"Printer": ("Desk printer", "Desk printer"), "KeyCutter": ("Key encoder", "Desk encoder")}


def one_device(sim, tmp_path, log_file, device_type, driver):
    """A Mews device of ``device_type`` and settings serving it with ``driver``: its id and the settings."""
    name, mews_name = NAMES[device_type]
    device_id = sim.add_device(mews_name, device_type)
    return device_id, make_settings(sim, tmp_path, log_file, [(name, device_id, driver)])


def plugins(scripted):
    return {"scripted": scripted, "failure_paths": FAILURE_PATHS_PLUGIN}


# -- cases -----------------------------------------------------------------------------------------


async def test_a_command_that_finishes_within_the_shutdown_grace_is_recorded_and_reported(
    mews_simulator, tmp_path, log_file, scripted
):
    """SIGTERM while a command runs: it finishes well inside ``shutdown_grace_s`` (2 s here), yet the
    worker is cancelled before it records the outcome, so the next start treats it as interrupted."""
    printer = mews_simulator.add_device("Desk printer", "Printer")
    cutter = mews_simulator.add_device("Desk encoder", "KeyCutter")
    settings = make_settings(
        mews_simulator,
        tmp_path,
        log_file,
        [("Desk printer", printer, "scripted_printer"), ("Key encoder", cutter, "plain_cutter")],
    )
    async with running_bridge(settings, plugins(scripted)) as bridge:
        bridge.pipeline.pool.processing_after_s = 0.05  # the usual case: the command ran over a second
        printout = mews_simulator.add_command(printer, scripted.printer_data(sleep_s=0.5))
        key = mews_simulator.add_command(cutter, scripted.cutter_data(sleep_s=0.5, notes="1 key"))
        await wait_for(lambda: runs(log_file, printout) == ["start"] and runs(log_file, key) == ["start"])
        # leaving the block is Bridge.stop(), what SIGTERM does
    assert runs(log_file, printout) == ["start", "done"]  # both finished inside the grace period
    assert runs(log_file, key) == ["start", "done"]
    states_after_stop = {cid: mews_simulator.command(cid)["State"] for cid in (printout, key)}
    with sqlite3.connect(tmp_path / "state" / JOURNAL_FILE) as db:
        phases = dict(db.execute("SELECT id, phase FROM commands").fetchall())

    async with running_bridge(settings, plugins(scripted)):
        finals = {cid: await wait_for_final_state(mews_simulator, cid) for cid in (printout, key)}
        await asyncio.sleep(0.3)
    seen = {
        "Mews right after stop": list(states_after_stop.values()),
        "journal after stop": [phases[printout], phases[key]],
        "printer runs": runs(log_file, printout),
        "key after restart": (finals[key]["State"], finals[key]["Notes"]),
    }
    # Expected: Mews got both results at shutdown, nothing ran again, the key is reported as cut.
    assert states_after_stop == {printout: "Processed", key: "Processed"}, seen
    assert runs(log_file, printout) == ["start", "done"], seen
    assert finals[key]["State"] == "Processed", seen


async def test_a_queued_command_cancelled_while_the_stream_is_down_is_not_run(
    mews_simulator, tmp_path, log_file, scripted
):
    printer, settings = one_device(mews_simulator, tmp_path, log_file, "Printer", "scripted_printer")
    async with running_bridge(settings, plugins(scripted)) as bridge:
        busy = mews_simulator.add_command(printer, scripted.printer_data(sleep_s=1.0))
        queued = mews_simulator.add_command(printer, scripted.printer_data())
        await wait_for(lambda: runs(log_file, busy) == ["start"])
        await wait_for(lambda: bridge.pipeline.workers[0].queue.qsize() == 1, what="the second to queue")
        # a WebSocket drop (routine: Mews restarts, the hotel's line blips)
        mews_simulator.faults.refuse_websockets_for(0.3)
        await mews_simulator.faults.drop_websockets()
        await wait_for(lambda: mews_simulator.websocket_connections == 0)
        mews_simulator.cancel_command(queued)  # staff cancel the queued printout meanwhile
        connects = bridge.stream.connects
        await wait_for(lambda: bridge.stream.connects > connects, what="the reconnect and catch-up")
        await wait_for_final_state(mews_simulator, busy)
        await wait_for(lambda: all(s.queue.empty() and s.current is None for s in bridge.pipeline.workers))
    assert mews_simulator.command(queued)["State"] == "Cancelled"
    assert runs(log_file, queued) == [], "a command cancelled in Mews was carried out"


async def test_a_command_cancelled_while_its_device_is_still_setting_up_is_not_run(
    mews_simulator, tmp_path, log_file, scripted
):
    cutter, settings = one_device(mews_simulator, tmp_path, log_file, "KeyCutter", "slow_setup_cutter")
    async with running_bridge(settings, plugins(scripted)) as bridge:
        worker = bridge.pipeline.workers[0]
        key = mews_simulator.add_command(cutter, scripted.cutter_data())
        await wait_for(lambda: worker.current is not None, what="the worker to take the command")
        assert worker.managed.state.value == "setup_in_progress"
        mews_simulator.cancel_command(key)  # the guest left; staff cancel the key in Mews
        await wait_for(lambda: worker.managed.state.value == "loaded", 5)
        await wait_for(lambda: worker.current is None and worker.queue.empty(), 5)
    assert mews_simulator.command(key)["State"] == "Cancelled"
    assert runs(log_file, key) == [], "a key was cut for a command cancelled in Mews"


async def test_a_driver_that_raises_cancelled_error_does_not_stop_its_device_queue(
    mews_simulator, tmp_path, log_file, scripted
):
    printer, settings = one_device(mews_simulator, tmp_path, log_file, "Printer", "link_loss_printer")
    async with running_bridge(settings, plugins(scripted)) as bridge:
        lost = mews_simulator.add_command(printer, scripted.printer_data(link_lost=True))
        after = mews_simulator.add_command(printer, scripted.printer_data())
        final = await wait_for_final_state(mews_simulator, lost)
        assert final["State"] == "Error"
        assert final["Notes"] == "Desk printer failed unexpectedly; the bridge log has the details."
        assert (await wait_for_final_state(mews_simulator, after))["State"] == "Processed"
        assert not bridge.pipeline.workers[0].task.done()


async def test_a_journal_error_during_recovery_does_not_stop_the_event_stream_for_good(
    mews_simulator, tmp_path, log_file, scripted
):
    printer, settings = one_device(mews_simulator, tmp_path, log_file, "Printer", "scripted_printer")
    # the last run journaled a command and stopped before running it
    left = mews_simulator.add_command(printer, scripted.printer_data())
    journal = await Journal.open(tmp_path / "state" / JOURNAL_FILE)
    await journal.add(left, printer, "Desk printer", mews_simulator.command(left)["CreatedUtc"])
    await journal.close()

    # something else holds the journal's write lock for a while (sqlite3 shell, a backup, a CLI command)
    holder = sqlite3.connect(tmp_path / "state" / JOURNAL_FILE, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        async with running_bridge(
            settings, plugins(scripted), wait_connected=False, journal_busy_timeout_s=0.3
        ) as bridge:
            await asyncio.sleep(1)  # longer than the journal's busy timeout: its reads and writes fail
            holder.execute("COMMIT")
            stream_task = bridge.supervisor.task("mews stream")
            assert stream_task is not None
            died = stream_task.done() and not stream_task.cancelled() and stream_task.exception()
            new = mews_simulator.add_command(printer, scripted.printer_data())
            await asyncio.sleep(2)
            states = {cid: mews_simulator.command(cid)["State"] for cid in (left, new)}
            assert not died, f"the 'mews stream' task died silently with {died!r}; Mews: {states}"
            await wait_for_final_state(mews_simulator, new)
            await wait_for_final_state(mews_simulator, left)
    finally:
        holder.close()


async def test_a_mews_outage_does_not_hold_each_device_for_a_retry_budget(
    mews_simulator, tmp_path, log_file, scripted
):
    printer, settings = one_device(mews_simulator, tmp_path, log_file, "Printer", "scripted_printer")
    async with running_bridge(settings, plugins(scripted)) as bridge:
        bridge.pipeline.acks.retry_s = 0.3
        bridge.pipeline.pool.processing_after_s = 60
        mews_simulator.faults.fail_operation("commands/update", times=10_000)  # Mews answers 500
        first = mews_simulator.add_command(printer, scripted.printer_data())
        await wait_for(
            lambda: bridge.pipeline.status()["waiting_for_mews"] == 1, what="Mews to be known down"
        )
        bridge.pipeline.acks.retry_s = 60  # a retry budget per command would now hold the printer for minutes
        later = [mews_simulator.add_command(printer, scripted.printer_data()) for _ in range(3)]
        await wait_for(lambda: all(runs(log_file, cid) == ["start", "done"] for cid in later), 10)
        await wait_for(
            lambda: bridge.pipeline.status()["waiting_for_mews"] == 4, what="every result to be kept"
        )
        mews_simulator.faults.fail_operation("commands/update", times=0)
    assert runs(log_file, first) == ["start", "done"]


# -- exactly once against a Mews that loses answers ---------------------------------------------------


async def test_a_record_mews_will_not_read_is_settled_alone_and_never_holds_up_the_stream(
    mews_simulator, tmp_path, log_file, scripted, caplog
):
    printer, settings = one_device(mews_simulator, tmp_path, log_file, "Printer", "scripted_printer")
    left = mews_simulator.add_command(printer, scripted.printer_data())
    gone = "a-command-id-mews-answers-400-for"
    journal = await Journal.open(tmp_path / "state" / JOURNAL_FILE)
    await journal.add(left, printer, "Desk printer", mews_simulator.command(left)["CreatedUtc"])
    await journal.add(gone, printer, "Desk printer", mews_simulator.command(left)["CreatedUtc"])
    await journal.mark_finished(gone, "Processed", "Printed")
    await journal.close()

    async with running_bridge(settings, plugins(scripted)) as bridge:
        new = mews_simulator.add_command(printer, scripted.printer_data())
        assert (await wait_for_final_state(mews_simulator, new))["State"] == "Processed"
        assert (await wait_for_final_state(mews_simulator, left))["State"] == "Processed"
        record = await wait_for_record(bridge, gone, "acknowledged")
    statuses = [call["status"] for call in mews_simulator.calls_to("commands/getAllByIds")]
    assert 400 in statuses
    assert record.final_state == "Processed"
    assert any(gone in line and "never received" in line for line in caplog.messages)


async def wait_for_record(bridge, command_id, phase):
    async def reached():
        record = await bridge.journal.get(command_id)
        return record if record and record.phase == phase else None

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while (record := await reached()) is None:
        assert loop.time() < deadline, f"{command_id} did not reach {phase}"
        await asyncio.sleep(0.05)
    return record


async def test_a_finished_command_mews_shows_active_again_gets_its_outcome_not_a_second_run(
    mews_simulator, tmp_path, log_file, scripted
):
    printer, settings = one_device(mews_simulator, tmp_path, log_file, "Printer", "scripted_printer")
    async with running_bridge(settings, plugins(scripted)) as bridge:
        command = mews_simulator.add_command(printer, scripted.printer_data())
        await wait_for_final_state(mews_simulator, command)
        await wait_for_record(bridge, command, "acknowledged")
        # Mews lost the outcome: the command is Pending again (a catch-up after a reconnect sees it).
        mews_simulator.commands[command]["State"] = "Pending"
        await mews_simulator.faults.drop_websockets()
        final = await wait_for(
            lambda: (c := mews_simulator.command(command))["State"] == "Processed" and c, what="convergence"
        )
    assert runs(log_file, command) == ["start", "done"]
    updates = [c for c in mews_simulator.calls_to("commands/update") if c["body"]["CommandId"] == command]
    assert [c["body"]["State"] for c in updates] == ["Processed", "Processed"]
    assert final["Notes"] == updates[0]["body"].get("Notes")


async def test_a_409_on_the_final_state_is_read_again_and_sent_again(
    mews_simulator, tmp_path, log_file, scripted
):
    printer, settings = one_device(mews_simulator, tmp_path, log_file, "Printer", "scripted_printer")
    mews_simulator.faults.fail_operation("commands/update", times=1, status=409)
    async with running_bridge(settings, plugins(scripted)):
        command = mews_simulator.add_command(printer, scripted.printer_data())
        final = await wait_for_final_state(mews_simulator, command)
    operations = [c["operation"] for c in mews_simulator.calls if c["operation"] != "commands/getAllActive"]
    conflict = operations.index("commands/update")
    assert final["State"] == "Processed"
    assert operations[conflict : conflict + 3] == [
        "commands/update",
        "commands/getAllByIds",
        "commands/update",
    ]
    assert runs(log_file, command) == ["start", "done"]


@pytest.mark.parametrize("mode", ["drop", "504"])
async def test_a_final_state_whose_answer_is_lost_lands_once_and_the_command_runs_once(
    mews_simulator, tmp_path, log_file, scripted, mode
):
    printer, settings = one_device(mews_simulator, tmp_path, log_file, "Printer", "scripted_printer")
    mews_simulator.faults.lose_responses("commands/update", times=1, mode=mode)
    async with running_bridge(settings, plugins(scripted)) as bridge:
        command = mews_simulator.add_command(printer, scripted.printer_data())
        final = await wait_for_final_state(mews_simulator, command)
        await wait_for_record(bridge, command, "acknowledged")
    assert final["State"] == "Processed"
    assert mews_simulator.faults.lost_responses == [("commands/update", mode)]
    assert runs(log_file, command) == ["start", "done"]
