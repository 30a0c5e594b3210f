"""Malformed input from Mews never stops intake: each command is judged on its own, events one by one,
and the core's background tasks come back if they die."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest
from pydantic import BaseModel, Field, ValidationError

from mews_bridge.inputs import deeper_than, describe_validation_error, unencodable_path
from mews_bridge.testing import running_bridge, wait_for, wait_for_final_state
from mews_bridge_mocks.fuzz import EXCEPTION_WORDS


def corrupt(sim, command_id, **fields):
    """Change a command's row as Mews would return it (before the bridge has fetched it)."""
    sim.commands[command_id].update(fields)


async def test_a_command_that_does_not_fit_the_model_ends_in_error_and_intake_goes_on(
    mews_simulator, devices, settings, scripted
):
    printer = devices["printer"]
    async with running_bridge(settings(), {"scripted": scripted}):
        bad = {}
        for label, fields in {
            "list": {"Data": []},
            "text": {"Data": "text"},
            "surrogate": {"Data": {**scripted.printer_data(), "PrinterName": "\ud800"}},
            "created": {"CreatedUtc": "yesterday"},
        }.items():
            bad[label] = mews_simulator.add_command(printer, scripted.printer_data())
            corrupt(mews_simulator, bad[label], **fields)
        no_data = mews_simulator.add_command(printer, {})
        corrupt(mews_simulator, no_data, Data=None)
        after = mews_simulator.add_command(printer, scripted.printer_data())
        finals = {label: await wait_for_final_state(mews_simulator, cid) for label, cid in bad.items()}
        assert (await wait_for_final_state(mews_simulator, after))["State"] == "Processed"
        assert (await wait_for_final_state(mews_simulator, no_data))["Notes"] == (
            "The command's data is not valid: Field `Data.CopyCount` is missing (and 2 more problems)."
        )
    assert {label: final["State"] for label, final in finals.items()} == dict.fromkeys(bad, "Error")
    assert finals["list"]["Notes"] == "This command cannot be carried out: Field `Data` is not an object."
    assert finals["surrogate"]["Notes"] == (
        "This command cannot be carried out: Field `Data.PrinterName` contains characters that are not valid text."
    )
    assert finals["created"]["Notes"].endswith("Field `CreatedUtc` is not a valid date and time.")
    assert not any(EXCEPTION_WORDS.search(final["Notes"]) for final in finals.values())


async def test_a_malformed_active_command_is_settled_by_the_catch_up_and_the_sweep_goes_on(
    mews_simulator, devices, settings, scripted, caplog
):
    printer = devices["printer"]
    waiting = mews_simulator.add_command(printer, scripted.printer_data())
    corrupt(mews_simulator, waiting, Data=[1, 2])
    mews_simulator.commands.add({"Id": 42, "State": "Pending"})  # nothing can answer a command without an id
    with caplog.at_level(logging.ERROR, logger="mews_bridge"):
        async with running_bridge(settings(mews={"sweep_interval_s": 0.2}), {"scripted": scripted}):
            assert (await wait_for_final_state(mews_simulator, waiting))["State"] == "Error"
            sweeps = len(mews_simulator.calls_to("commands/getAllActive"))
            await wait_for(lambda: len(mews_simulator.calls_to("commands/getAllActive")) > sweeps + 2)
            # events missed while the bad commands sit in Mews are still picked up by the sweep
            missed = mews_simulator.add_command(printer, scripted.printer_data())
            assert (await wait_for_final_state(mews_simulator, missed))["State"] == "Processed"
    skipped = [r for r in caplog.records if "without a usable Id" in r.getMessage()]
    assert len(skipped) == 1, "a command without an id is logged once, not at every sweep"


async def test_events_with_garbage_ids_or_text_are_dropped_and_the_stream_goes_on(
    mews_simulator, devices, settings, scripted, caplog
):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        connects = bridge.stream.connects
        with caplog.at_level(logging.WARNING):
            await mews_simulator.push_events(
                [
                    {"Type": "DeviceCommand", "Id": "\ud800", "State": "Pending"},
                    {"Type": "DeviceCommand", "Id": "not-a-guid", "State": "Pending"},
                    {"Type": "DeviceCommand", "Id": ["x"], "State": ["Pending"]},
                    {"Type": "Reservation", "Id": "\udfff", "State": "Started"},
                    "text",
                ]
            )
            await mews_simulator.push_events([{"Type": "Reservation", "Id": "r-1", "State": "Started"}])
        after = mews_simulator.add_command(devices["printer"], scripted.printer_data())
        assert (await wait_for_final_state(mews_simulator, after))["State"] == "Processed"
        assert bridge.stream.connects == connects
        recorded = [event for event in scripted.EventRecorder.seen if event["Type"] == "Reservation"]
        assert recorded == [{"Type": "Reservation", "Id": "r-1", "State": "Started"}]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    reads = [c["body"]["CommandIds"] for c in mews_simulator.calls_to("commands/getAllByIds")]
    assert all(ids == [after] for ids in reads), "garbage ids never reach Mews"


async def test_deep_and_oversized_websocket_messages_are_dropped_with_one_warning(
    mews_simulator, devices, settings, scripted, caplog
):
    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        with caplog.at_level(logging.WARNING):
            await mews_simulator.push_frame("[" * 100_000 + "]" * 100_000)
            deep_event = {"Type": "Reservation", "Id": "r-2"}
            for _ in range(100):
                deep_event = {"Type": "Reservation", "Nested": deep_event}
            await mews_simulator.push_events([deep_event])
            await mews_simulator.push_frame('{"Events": [' + '"x",' * 400_000 + '"x"]}')  # > 1 MiB
            await wait_for(lambda: bridge.stream.connected.is_set() and bridge.stream.connects > 1)
        after = mews_simulator.add_command(devices["printer"], scripted.printer_data())
        assert (await wait_for_final_state(mews_simulator, after))["State"] == "Processed"
    warnings = [
        r for r in caplog.records if r.name.startswith("mews_bridge") and r.levelno >= logging.WARNING
    ]
    assert not [r for r in warnings if r.exc_info or r.levelno >= logging.ERROR]
    assert sum("malformed message" in r.getMessage() for r in warnings) == 1
    assert sum("nested deeper" in r.getMessage() for r in warnings) == 1


async def test_a_core_task_that_dies_is_restarted_logged_and_shown_in_diagnostics(
    mews_simulator, devices, settings, scripted, caplog
):
    runs = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("a bug")
        await asyncio.Event().wait()

    async with running_bridge(settings(), {"scripted": scripted}) as bridge:
        bridge.supervisor.restart_initial_s = 0.05
        with caplog.at_level(logging.CRITICAL):
            bridge.supervisor.start("probe", flaky)
            await wait_for(lambda: len(runs) == 2)
        assert [r for r in caplog.records if r.levelno == logging.CRITICAL and "'probe'" in r.getMessage()]
        status = (await bridge.diagnostics())["tasks"]
        assert status["probe"]["restarts"] == 1 and status["probe"]["running"]
        assert "a bug" in status["probe"]["last_failure"]
        assert status["command fetch"] == {
            "running": True,
            "restarts": 0,
            "last_failure": None,
            "last_failure_at": None,
        }


def test_text_checks_walk_any_depth_and_name_the_field():
    deep: list = ["\ud800"]
    for _ in range(100_000):
        deep = [deep]
    assert unencodable_path(deep, "Data").startswith("Data[0][0]")
    assert unencodable_path({"Bill": {"Items": [{"Name": "ok"}, {"Name": "b\udc80d"}]}}, "Data") == (
        "Data.Bill.Items[1].Name"
    )
    assert unencodable_path({"a": ["ok", {"b": 1.5}]}) is None
    assert deeper_than(deep, 32) and not deeper_than({"a": [{"b": []}]}, 32)


def test_pydantic_errors_become_sentences():
    class Item(BaseModel):
        unit_amount: Decimal
        count: int | None = Field(None, le=9)

    class Bill(BaseModel):
        items: list[Item]

    with pytest.raises(ValidationError) as caught:
        Bill.model_validate({"items": [{"unit_amount": "1"}, {"unit_amount": "NaN", "count": 10}]})
    assert describe_validation_error(caught.value, "Bill") == (
        "Field `Bill.items[1].unit_amount` is not a valid amount (and 1 more problem)."
    )
    with pytest.raises(ValidationError) as caught:
        Item.model_validate({"unit_amount": 1, "count": "many"})
    assert describe_validation_error(caught.value) == "Field `count` is not a whole number."
