"""The command lifecycle end to end: the Mews simulator over HTTP and WebSocket, a real bridge, scripted drivers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mews_bridge.testing import (
    running_bridge,
    wait_for,
    wait_for_final_state,
)


async def acknowledged(bridge, command_id):
    """The journal record once the bridge has noted that Mews took the final state (just after Mews has it)."""
    for _ in range(500):
        record = await bridge.journal.get(command_id)
        if record is not None and record.phase == "acknowledged":
            return record
        await asyncio.sleep(0.01)
    raise AssertionError(f"command {command_id} never acknowledged in the journal")


def runs(log_file, command_id):
    return [line.split()[0] for line in log_file.read_text().splitlines() if line.endswith(command_id)]


async def test_an_event_becomes_processed_with_notes(mews_simulator, devices, settings, scripted, log_file):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        bridge.pipeline.pool.processing_after_s = (
            60  # a loaded test machine must not make this command "long"
        )
        command_id = mews_simulator.add_command(
            devices["printer"], scripted.printer_data(notes="Paper near end")
        )
        final = await wait_for_final_state(mews_simulator, command_id)
        assert final["State"] == "Processed"
        assert final["Notes"] == "Paper near end"
        assert runs(log_file, command_id) == ["start", "done"]
        record = await acknowledged(bridge, command_id)
        assert (record.final_state, record.instance) == ("Processed", "Desk printer")
    # a short command costs one fetch and one final update; no Received or Processing
    updates = [
        call for call in mews_simulator.calls_to("commands/update") if call["body"]["CommandId"] == command_id
    ]
    assert [u["body"]["State"] for u in updates] == ["Processed"]


async def test_a_long_command_reports_processing_and_progress(mews_simulator, devices, settings, scripted):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        bridge.pipeline.pool.processing_after_s = 0.05
        command_id = mews_simulator.add_command(
            devices["printer"], scripted.printer_data(sleep_s=0.4, progress=[0.5])
        )
        final = await wait_for_final_state(mews_simulator, command_id)
    states = [entry[0] for entry in final["History"]]
    assert states[-1] == "Processed"
    assert "Processing" in states
    assert any(entry[0] == "Processing" and entry[1] == 0.5 for entry in final["History"])


async def test_device_faults_and_bad_data_end_in_error_and_the_bridge_goes_on(
    mews_simulator, devices, settings, scripted
):
    async with running_bridge(settings(), {"scripted": scripted}):
        failed = mews_simulator.add_command(devices["printer"], scripted.printer_data(fail="Paper out"))
        crashed = mews_simulator.add_command(devices["printer"], scripted.printer_data(crash=True))
        malformed = mews_simulator.add_command(
            devices["printer"], {"CopyCount": 1, "FileType": "application/pdf"}
        )
        after = mews_simulator.add_command(devices["printer"], scripted.printer_data())
        results = {
            cid: await wait_for_final_state(mews_simulator, cid)
            for cid in (failed, crashed, malformed, after)
        }
    assert results[failed]["State"] == "Error"
    assert results[failed]["Notes"] == "Paper out on Desk printer"
    assert results[crashed]["State"] == "Error"
    assert results[crashed]["Notes"] == "Desk printer failed unexpectedly; the bridge log has the details."
    assert results[malformed]["State"] == "Error"
    assert results[malformed]["Notes"] == "The command's data is not valid: Field `Data.FileData` is missing."
    assert results[after]["State"] == "Processed"


async def test_commands_for_an_unknown_device_are_left_or_refused_as_set(mews_simulator, settings, scripted):
    elsewhere = mews_simulator.add_device("Bar printer", "Printer")
    async with running_bridge(settings(), {"scripted": scripted}):
        left = mews_simulator.add_command(elsewhere, scripted.printer_data())
        await asyncio.sleep(0.3)
        assert mews_simulator.command(left)["State"] == "Pending"
    async with running_bridge(settings(unknown_devices="error"), {"scripted": scripted}):
        final = await wait_for_final_state(mews_simulator, left)
    assert final["State"] == "Error"
    assert "No device called 'Bar printer'" in final["Notes"]


async def test_cancelled_commands_are_dropped_when_queued_and_stopped_when_running(
    mews_simulator, devices, settings, scripted, log_file
):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        running = mews_simulator.add_command(devices["printer"], scripted.printer_data(sleep_s=30))
        queued = mews_simulator.add_command(devices["printer"], scripted.printer_data())
        await wait_for(lambda: runs(log_file, running) == ["start"], what="the first command to start")
        mews_simulator.cancel_command(queued)
        mews_simulator.cancel_command(running)
        await wait_for(lambda: runs(log_file, running) == ["start", "cancelled"], what="the driver to stop")
        await wait_for(lambda: all(s.queue.empty() and s.current is None for s in bridge.pipeline.workers))
        assert runs(log_file, queued) == []
        for command_id in (running, queued):
            record = await bridge.journal.get(command_id)
            assert (record.phase, record.final_state) == ("acknowledged", "Cancelled")


async def test_a_command_for_an_idle_device_is_journaled_as_running_before_it_starts(
    mews_simulator, devices, settings, scripted, log_file
):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        first = mews_simulator.add_command(devices["printer"], scripted.printer_data(sleep_s=0.5))
        await wait_for(lambda: runs(log_file, first) == ["start"], what="the first command to start")
        # Straight to the idle device: receipt and start are one write, done before the driver began.
        record = await bridge.journal.get(first)
        assert (record.phase, record.instance, record.runs) == ("running", "Desk printer", 1)
        assert record.started_at == record.received_at
        second = mews_simulator.add_command(devices["printer"], scripted.printer_data())
        # Behind a busy device it waits journaled as received, not as started.
        await wait_for(lambda: second in bridge.pipeline.pool.held(), what="the second to queue")
        assert (await bridge.journal.get(second)).phase == "queued"
        for command_id in (first, second):
            assert (await wait_for_final_state(mews_simulator, command_id))["State"] == "Processed"
        await wait_for(lambda: all(s.current is None for s in bridge.pipeline.workers))
        records = [await bridge.journal.get(command_id) for command_id in (first, second)]
    assert [(r.phase, r.runs) for r in records] == [("acknowledged", 1)] * 2
    assert runs(log_file, first) == runs(log_file, second) == ["start", "done"]


async def test_commands_queued_while_disconnected_are_caught_up_after_reconnecting(
    mews_simulator, devices, settings, scripted
):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        connects = bridge.stream.connects
        mews_simulator.faults.refuse_websockets_for(0.5)
        await mews_simulator.faults.drop_websockets()
        missed = [mews_simulator.add_command(devices["printer"], scripted.printer_data()) for _ in range(3)]
        finals = [await wait_for_final_state(mews_simulator, cid) for cid in missed]
        assert [f["State"] for f in finals] == ["Processed"] * 3
        assert bridge.stream.connects > connects
    assert mews_simulator.calls_to("commands/getAllActive")


async def test_a_silent_websocket_is_detected_and_replaced(mews_simulator, devices, settings, scripted):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        connects = bridge.stream.connects
        mews_simulator.faults.silent_websockets = True
        await wait_for(lambda: bridge.stream.connects > connects, what="a reconnect")
        mews_simulator.faults.silent_websockets = False
        command_id = mews_simulator.add_command(devices["printer"], scripted.printer_data())
        assert (await wait_for_final_state(mews_simulator, command_id))["State"] == "Processed"


async def test_a_429_storm_is_ridden_out_without_losing_a_command(
    mews_simulator, devices, settings, scripted
):
    async with running_bridge(settings(), {"scripted": scripted}):
        mews_simulator.faults.rate_limit_storm(1.0)
        ids = [mews_simulator.add_command(devices["printer"], scripted.printer_data()) for _ in range(5)]
        finals = [await wait_for_final_state(mews_simulator, cid, timeout_s=20) for cid in ids]
    assert [f["State"] for f in finals] == ["Processed"] * 5
    assert any(call["status"] == 429 for call in mews_simulator.calls)


async def test_a_mews_outage_keeps_the_result_until_it_can_be_delivered(
    mews_simulator, devices, settings, scripted, log_file
):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        bridge.pipeline.acks.retry_s = 0.2
        mews_simulator.faults.fail_operation("commands/update", times=50)
        command_id = mews_simulator.add_command(devices["printer"], scripted.printer_data())
        await wait_for(lambda: runs(log_file, command_id) == ["start", "done"])
        await wait_for(lambda: bridge.pipeline.status()["waiting_for_mews"] == 1, what="the result to wait")
        record = await bridge.journal.get(command_id)
        assert record.phase == "finished"
        mews_simulator.faults.fail_operation("commands/update", times=0)
        final = await wait_for_final_state(mews_simulator, command_id)
        assert final["State"] == "Processed"
        await wait_for(lambda: bridge.pipeline.status()["waiting_for_mews"] == 0)
    assert runs(log_file, command_id) == ["start", "done"]


async def test_duplicate_events_and_sweeps_never_run_a_command_twice(
    mews_simulator, devices, settings, scripted, log_file
):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        command_id = mews_simulator.add_command(devices["printer"], scripted.printer_data(sleep_s=0.3))
        event = {"Type": "DeviceCommand", "Id": command_id, "State": "Pending"}
        await mews_simulator.push_events([event, event])
        await bridge.pipeline.catch_up()
        await mews_simulator.push_events([event])
        await wait_for_final_state(mews_simulator, command_id)
        await bridge.pipeline.catch_up()
        await asyncio.sleep(0.2)
    assert runs(log_file, command_id) == ["start", "done"]


async def test_old_commands_expire_and_unavailable_devices_say_so(
    mews_simulator, devices, settings, scripted
):
    stale = mews_simulator.add_command(
        devices["printer"], scripted.printer_data(), created_utc=datetime.now(UTC) - timedelta(days=2)
    )
    s = settings()
    s.devices[1].options["not_ready"] = True
    async with running_bridge(s, {"scripted": scripted}):
        final = await wait_for_final_state(mews_simulator, stale)
        assert final["State"] == "Error"
        assert "expired while the bridge was offline" in final["Notes"]
        cut = mews_simulator.add_command(devices["cutter"], scripted.cutter_data())
        final = await wait_for_final_state(mews_simulator, cut)
    assert final["State"] == "Error"
    assert final["Notes"] == "Key encoder is not available: Key encoder is switched off."


async def test_services_follow_reservation_events_and_reconnects(mews_simulator, settings, scripted):
    recorder = scripted.EventRecorder
    async with running_bridge(settings(), {"scripted": scripted}):
        guest = mews_simulator.add_customer("Novak", "Jana")
        room = mews_simulator.add_resource("305")
        reservation = mews_simulator.add_reservation(guest, room)
        mews_simulator.check_in(reservation)
        await wait_for(
            lambda: any(e.get("Id") == reservation and e.get("State") == "Started" for e in recorder.seen),
            what="the check-in event",
        )
    assert recorder.seen[0] == {"Type": "Connected"}


async def test_one_device_can_hand_work_to_another(mews_simulator, devices, settings, scripted, log_file):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        notes = await bridge.pipeline.run("Desk printer", scripted.printer_data(notes="printed locally"))
        assert notes == "printed locally"
        with pytest.raises(Exception, match="Paper out on Desk printer"):
            await bridge.pipeline.run("Desk printer", scripted.printer_data(fail="Paper out"))
    assert not mews_simulator.calls_to("commands/update")


async def test_a_driver_that_blocks_the_event_loop_is_named_in_the_log(
    mews_simulator, devices, settings, scripted, caplog
):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        command_id = mews_simulator.add_command(devices["printer"], scripted.printer_data(block_s=0.9))
        assert (await wait_for_final_state(mews_simulator, command_id))["State"] == "Processed"
        await wait_for(lambda: bridge.watchdog.incidents, what="the watchdog to report")
    blocked = [r.getMessage() for r in caplog.records if "event loop was blocked" in r.getMessage()]
    assert len(blocked) == 1
    assert "by plugin scripted (" in blocked[0]
    assert "scripted_plugin.py" in blocked[0] and "in _perform" in blocked[0]


async def test_a_failed_journal_ends_the_command_in_error_and_the_bridge_goes_on(
    mews_simulator, devices, settings, scripted, log_file
):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        running = mews_simulator.add_command(devices["printer"], scripted.printer_data(sleep_s=0.5))
        waiting = mews_simulator.add_command(devices["printer"], scripted.printer_data())
        await wait_for(lambda: runs(log_file, running) == ["start"], what="the first command to start")
        await wait_for(lambda: bridge.pipeline.status()["devices"]["Desk printer"]["queued"] == 1)
        await bridge.journal.close()  # the storage goes away under the bridge
        finals = [await wait_for_final_state(mews_simulator, cid) for cid in (running, waiting)]
        assert not bridge.pipeline.workers[0].task.done()  # the device still takes work
    # the running one finished against the broken storage too (its driver keeps state there): Mews hears it
    assert finals[0]["State"] == "Error" and "failed unexpectedly" in finals[0]["Notes"]
    assert finals[1]["State"] == "Error"
    assert "could not write to its journal" in finals[1]["Notes"]
    assert runs(log_file, waiting) == []  # not carried out without a record
