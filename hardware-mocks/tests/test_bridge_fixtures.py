"""The ``bridge_harness`` fixture: a real bridge wired to the Mews simulator, with given or installed plugins."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from mews_bridge import CommandJob, DeviceDriver, DeviceNotReady, hookimpl
from mews_bridge.mews.models import COMMAND_DATA_MODELS, DEVICE_TYPES
from mews_bridge_escpos_printer.driver import EscposPrinterDriver
from mews_bridge_mocks.bridge_fixtures import example_command_data
from mews_bridge_serial_keycutter.driver import SerialKeycutterDriver


class CounterOptions(BaseModel):
    ready_file: Path | None = None
    """While given and missing, setup says the device is not ready."""


class CounterDriver(DeviceDriver[CounterOptions]):
    """Counts the copies it is asked to print."""

    name = "test_counter"
    device_type = "Printer"
    Options: ClassVar[type[CounterOptions]] = CounterOptions

    async def setup(self) -> None:
        ready_file = self.options.ready_file
        if ready_file is not None and not ready_file.exists():
            raise DeviceNotReady(f"{self.ctx.name} is switched off")

    async def execute(self, job: CommandJob[Any]) -> str | None:
        return f"{job.data.copy_count} copies on {self.ctx.name}"


class CounterPlugin:
    @hookimpl
    def register_drivers(self, register: Callable[[type[DeviceDriver[Any]]], None]) -> None:
        register(CounterDriver)


PLUGINS = {"test_counter": CounterPlugin()}


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads, sockets or ptys behind."""


async def test_commands_pushed_by_device_name_or_id_reach_the_given_plugin(bridge_harness):
    device_id = bridge_harness.add_device("Desk printer", CounterDriver)
    bridge = await bridge_harness.start(PLUGINS)
    assert list(bridge.host.plugins) == ["test_counter"]

    data = {**example_command_data("Printer"), "CopyCount": 2}
    by_name = bridge_harness.push_command("desk PRINTER", data)
    by_id = bridge_harness.push_command(device_id, data)
    for command_id in (by_name, by_id):
        final = await bridge_harness.wait_final(command_id)
        assert (final["State"], final["Notes"]) == ("Processed", "2 copies on Desk printer")
        assert final["Device"]["Id"] == device_id


async def test_without_plugins_the_installed_ones_drive_the_device_simulators(
    bridge_harness, encoder_simulator, printer_simulator
):
    bridge_harness.add_device(
        "Reception encoder",
        SerialKeycutterDriver,
        {"port": encoder_simulator.port_url, "dialect": "salto", "encoder": "Encoder1"},
    )
    bridge_harness.add_device(
        "Reception printer",
        EscposPrinterDriver,
        {"connection": printer_simulator.url, "profile": "TM-T20II"},
    )
    bridge = await bridge_harness.start()
    keycutter = bridge.host.plugins["serial_keycutter"]
    assert (keycutter.status, keycutter.version) == ("loaded", version("mews-bridge-serial-keycutter"))

    key = bridge_harness.push_command("Reception encoder", example_command_data("KeyCutter"))
    receipt = bridge_harness.push_command("Reception printer", example_command_data("Printer"))

    assert (await bridge_harness.wait_final(key))["State"] == "Processed"
    assert (await bridge_harness.wait_final(receipt))["State"] == "Processed"
    assert [card.rooms for card in encoder_simulator.encoded_cards] == [("101",)]
    assert [printed.cut for printed in printer_simulator.receipts] == ["full"]


async def test_wait_loaded_waits_out_a_device_that_was_not_ready(bridge_harness, tmp_path):
    ready_file = tmp_path / "switched-on"
    bridge_harness.add_device("Desk printer", CounterDriver, {"ready_file": ready_file})
    await bridge_harness.start(PLUGINS)

    early = await bridge_harness.wait_final(
        bridge_harness.push_command("Desk printer", example_command_data("Printer"))
    )
    assert (early["State"], early["Notes"]) == (
        "Error",
        "Desk printer is not available: Desk printer is switched off.",
    )

    ready_file.touch()
    await bridge_harness.wait_loaded("Desk printer")
    later = await bridge_harness.wait_final(
        bridge_harness.push_command("Desk printer", example_command_data("Printer"))
    )
    assert later["State"] == "Processed"
    with pytest.raises(LookupError, match="no configured device called 'Bar printer'"):
        await bridge_harness.wait_loaded("Bar printer")


async def test_the_journal_outlives_a_stop_and_the_next_start(bridge_harness):
    bridge_harness.add_device("Desk printer", CounterDriver)
    await bridge_harness.start(PLUGINS)
    command_id = bridge_harness.push_command("Desk printer", example_command_data("Printer"))
    await bridge_harness.wait_final(command_id)
    await bridge_harness.stop()
    assert bridge_harness.bridge is None

    bridge = await bridge_harness.start(PLUGINS)
    record = await bridge.journal.get(command_id)
    assert (record.phase, record.final_state) == ("acknowledged", "Processed")


async def test_misuse_is_refused_with_what_to_do(bridge_harness):
    bridge_harness.add_device("Desk printer", CounterDriver)
    with pytest.raises(RuntimeError, match="start"):
        await bridge_harness.wait_loaded("Desk printer")
    await bridge_harness.start(PLUGINS)

    with pytest.raises(RuntimeError, match="add devices before start"):
        bridge_harness.add_device("Bar printer", CounterDriver)
    with pytest.raises(RuntimeError, match="already running"):
        await bridge_harness.start(PLUGINS)
    with pytest.raises(LookupError, match=r"'Bar printer' \(known: 'Desk printer'\)"):
        bridge_harness.push_command("Bar printer", example_command_data("Printer"))


@pytest.mark.parametrize("device_type", DEVICE_TYPES)
def test_example_command_data_fits_the_core_model_of_each_device_type(device_type):
    COMMAND_DATA_MODELS[device_type].model_validate(example_command_data(device_type))


def test_example_command_data_names_the_known_types():
    with pytest.raises(ValueError, match="unknown device type 'Kiosk'; known: Printer, KeyCutter"):
        example_command_data("Kiosk")
