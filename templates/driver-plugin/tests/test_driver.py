"""The driver as a hotel runs it: Mews (simulated) -> the bridge -> the driver -> the device (simulated).

Everything goes over real sockets; the bridge finds the plugin by its entry point, so these tests run
against the installed package (``pip install -e ".[test]"`` while you work on it).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest
from mews_bridge.testing import wait_for
from mews_bridge_mocks.bridge_fixtures import example_command_data

from mews_bridge_my_device.driver import MyDeviceDriver


def command_data() -> dict[str, Any]:
    return example_command_data(MyDeviceDriver.device_type)


async def test_the_device_carries_out_the_command_and_its_warning_becomes_the_notes(
    bridge_harness, device_simulator, desk_device
):
    await bridge_harness.start()
    device_simulator.progress = [0.5]
    device_simulator.warning = "Paper near end"

    command_id = bridge_harness.push_command(desk_device, command_data())
    final = await bridge_harness.wait_final(command_id)

    assert (final["State"], final["Notes"]) == ("Processed", "Paper near end")
    assert ("Processing", 0.5, None) in final["History"]
    (job,) = device_simulator.jobs
    assert (job["id"], job["type"]) == (command_id, MyDeviceDriver.device_type)


@pytest.mark.parametrize("rejected", [False, True], ids=["device fault", "bad data"])
async def test_a_device_error_ends_in_error_with_notes_for_the_front_desk(
    bridge_harness, device_simulator, desk_device, rejected
):
    await bridge_harness.start()
    device_simulator.error, device_simulator.rejected = "Paper out", rejected

    failed = await bridge_harness.wait_final(bridge_harness.push_command(desk_device, command_data()))
    assert (failed["State"], failed["Notes"]) == ("Error", f"{desk_device}: Paper out")

    device_simulator.error = None
    after = await bridge_harness.wait_final(bridge_harness.push_command(desk_device, command_data()))
    assert after["State"] == "Processed"


async def test_a_device_switched_off_at_start_is_retried_until_it_answers(
    bridge_harness, device_simulator, desk_device
):
    await device_simulator.switch_off()
    await bridge_harness.start()

    early = await bridge_harness.wait_final(bridge_harness.push_command(desk_device, command_data()))
    assert early["State"] == "Error"
    assert early["Notes"].startswith(f"{desk_device} is not available: {desk_device} does not answer at ")

    await device_simulator.switch_on()
    await bridge_harness.wait_loaded(desk_device)
    later = await bridge_harness.wait_final(bridge_harness.push_command(desk_device, command_data()))
    assert later["State"] == "Processed"


async def test_a_lost_connection_fails_the_command_and_the_next_one_reconnects(
    bridge_harness, device_simulator, desk_device
):
    await bridge_harness.start()
    device_simulator.hang_up = True

    lost = await bridge_harness.wait_final(bridge_harness.push_command(desk_device, command_data()))
    assert lost["State"] == "Error"
    assert "lost contact while working on this command" in lost["Notes"]
    assert "check the device before issuing the command again" in lost["Notes"]

    after = await bridge_harness.wait_final(bridge_harness.push_command(desk_device, command_data()))
    assert after["State"] == "Processed"
    assert len(device_simulator.jobs) == 2


async def test_a_command_cut_off_by_a_restart_is_not_run_again(bridge_harness, device_simulator, desk_device):
    device_simulator.silent = True
    await bridge_harness.start(bridge={"shutdown_grace_s": 0})
    command_id = bridge_harness.push_command(desk_device, command_data())
    await wait_for(lambda: device_simulator.jobs, what="the device to get the command")
    await bridge_harness.stop()

    device_simulator.silent = False
    await bridge_harness.start()
    final = await bridge_harness.wait_final(command_id)

    # replay_safe is False: the bridge asks the driver's recover(), which cannot tell, so staff are asked.
    assert final["State"] == "Error"
    assert "was interrupted while working on this command" in final["Notes"]
    assert len(device_simulator.jobs) == 1


async def test_diagnostics_show_the_device_and_the_plugin_version(
    bridge_harness, device_simulator, desk_device
):
    bridge = await bridge_harness.start()
    await bridge_harness.wait_final(bridge_harness.push_command(desk_device, command_data()))

    (instance,) = (await bridge.diagnostics())["instances"]
    assert instance["state"] == "loaded"
    assert instance["plugin_version"] == version("mews-bridge-my-device")
    assert instance["instance"] == {
        "address": f"127.0.0.1:{device_simulator.port}",
        "connected": True,
        "model": "Simulated device",
        "commands": 1,
        "last_error": None,
    }
