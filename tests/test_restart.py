"""A bridge process killed with SIGKILL and started again: nothing lost, nothing done twice that would hurt."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from mews_bridge.testing import wait_for, wait_for_final_state
from mews_bridge_mocks.bridge_process import BridgeProcess

CONFIG = """
[mews]
platform_url = "{platform}"
websocket_url = "{websocket}"
client_token = "{client_token}"
access_token = "{access_token}"
ping_interval_s = 1
ping_timeout_s = 1
max_retry_s = 0.5

[bridge]
state_dir = "{state}"
shutdown_grace_s = 1

[[devices]]
name = "Desk printer"
mews_device = "Desk printer"
driver = "scripted_printer"
options = {{ log_file = "{log}" }}

[[devices]]
name = "Key encoder"
mews_device = "Desk encoder"
driver = "scripted_cutter"
options = {{ log_file = "{log}" }}
"""


def install_scripted_plugin(site: Path) -> None:
    info = site / "scripted_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: scripted-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[mews_bridge]\nscripted = scripted_plugin\n")
    source = Path(__file__).with_name("scripted_plugin.py").read_text()
    (site / "scripted_plugin.py").write_text(source)


@pytest.fixture
async def bridge_process(mews_simulator, tmp_path, log_file):
    site = tmp_path / "site"
    install_scripted_plugin(site)
    config = tmp_path / "config.toml"
    config.write_text(
        CONFIG.format(
            platform=mews_simulator.platform_url,
            websocket=mews_simulator.websocket_url,
            client_token=mews_simulator.client_token,
            access_token=mews_simulator.access_token,
            state=tmp_path / "state",
            log=log_file,
        )
    )
    bridge = BridgeProcess(config, tmp_path / "bridge.log", {"PYTHONPATH": str(site)})
    yield bridge
    if bridge.process is not None and bridge.process.returncode is None:  # the test failed midway
        await bridge.stop(signal.SIGKILL)


def runs(log_file, command_id):
    return [line.split()[0] for line in log_file.read_text().splitlines() if line.endswith(command_id)]


async def test_sigkill_mid_command_loses_nothing_and_never_repeats_an_unsafe_command(
    mews_simulator, bridge_process, log_file, scripted
):
    printer = mews_simulator.add_device("Desk printer", "Printer")
    cutter = mews_simulator.add_device("Desk encoder", "KeyCutter")
    await bridge_process.start()
    await wait_for(lambda: mews_simulator.websocket_connections, 20, "the bridge to connect")

    printing = mews_simulator.add_command(printer, scripted.printer_data(first_run_sleep_s=60))
    cutting = mews_simulator.add_command(cutter, scripted.cutter_data(first_run_sleep_s=60))
    queued = [mews_simulator.add_command(printer, scripted.printer_data()) for _ in range(2)]
    await wait_for(lambda: runs(log_file, printing) == ["start"] and runs(log_file, cutting) == ["start"], 20)
    assert await bridge_process.stop(signal.SIGKILL) == -signal.SIGKILL

    await bridge_process.start()
    finals = {
        cid: await wait_for_final_state(mews_simulator, cid, 30) for cid in (printing, cutting, *queued)
    }
    # the printout is safe to repeat, so it ran again; the key cutter is not, so staff are asked
    assert finals[printing]["State"] == "Processed"
    assert runs(log_file, printing) == ["start", "start", "done"]
    assert finals[cutting]["State"] == "Error"
    assert "issue the command again" in finals[cutting]["Notes"]
    assert runs(log_file, cutting) == ["start"]
    for command_id in queued:
        assert finals[command_id]["State"] == "Processed"
        assert runs(log_file, command_id) == ["start", "done"]

    assert await bridge_process.stop(signal.SIGTERM) == 0
    assert mews_simulator.access_token.encode() not in bridge_process.output()


async def test_a_result_mews_never_got_is_delivered_after_a_restart_without_running_again(
    mews_simulator, bridge_process, log_file, scripted
):
    cutter = mews_simulator.add_device("Desk encoder", "KeyCutter")
    await bridge_process.start()
    await wait_for(lambda: mews_simulator.websocket_connections, 20, "the bridge to connect")
    mews_simulator.faults.fail_operation("commands/update", times=10_000)
    command_id = mews_simulator.add_command(cutter, scripted.cutter_data(notes="1 key for room 101"))
    await wait_for(lambda: runs(log_file, command_id) == ["start", "done"], 20)
    await asyncio.sleep(0.3)
    assert await bridge_process.stop(signal.SIGKILL) == -signal.SIGKILL
    mews_simulator.faults.fail_operation("commands/update", times=0)

    await bridge_process.start()
    final = await wait_for_final_state(mews_simulator, command_id, 30)
    assert final["State"] == "Processed"
    assert final["Notes"] == "1 key for room 101"
    assert runs(log_file, command_id) == ["start", "done"]
    assert await bridge_process.stop(signal.SIGTERM) == 0


async def test_sigusr1_writes_diagnostics_without_secrets(mews_simulator, bridge_process, tmp_path):
    mews_simulator.add_device("Desk printer", "Printer")
    await bridge_process.start()
    await wait_for(lambda: mews_simulator.calls_to("commands/getAllActive"), 20, "the bridge to catch up")
    await asyncio.sleep(0.2)
    target = tmp_path / "state" / "diagnostics.json"
    bridge_process.process.send_signal(signal.SIGUSR1)
    await wait_for(target.exists, 10, "the diagnostics file")
    await asyncio.sleep(0.1)
    text = target.read_text()
    diagnostics = json.loads(text)
    assert diagnostics["connected"] is True
    states = {i["name"]: i["state"] for i in diagnostics["instances"]}
    assert states == {"Desk printer": "loaded", "Key encoder": "loaded"}
    assert {p["name"]: p["version"] for p in diagnostics["plugins"]}["scripted"] == "1.0"
    assert mews_simulator.access_token not in text and mews_simulator.client_token not in text
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert await bridge_process.stop(signal.SIGTERM) == 0
