"""The command line as an installer uses it: a settings file, a subprocess, its output and exit code."""

from __future__ import annotations

import json

import pytest

from mews_bridge.testing import bridge_settings, device, run_cli, write_settings_file

ENCODER = {"port": "socket://127.0.0.1:9", "dialect": "salto", "encoder": "Encoder1"}


@pytest.fixture
def write_config(tmp_path, mews_simulator):
    def write(driver="serial_keycutter", options=ENCODER, access_token=None):
        settings = bridge_settings(
            mews_simulator,
            tmp_path / "state",
            devices=[device("Reception encoder", "Reception encoder", driver, options)],
            mews={"access_token": access_token} if access_token else None,
        )
        return str(write_settings_file(settings, tmp_path / "config.toml"))

    return write


async def test_check_names_an_unknown_driver_and_lists_the_installed_ones(write_config):
    code, _, err = await run_cli("--config", write_config(driver="epson_magic"), "check")
    assert code == 78
    assert "devices[0].driver: no driver called 'epson_magic' is installed" in err
    assert "(installed: " in err and "serial_keycutter" in err


async def test_check_names_the_path_and_plugin_of_a_bad_option(write_config):
    options = {**ENCODER, "dialect": "acme", "colour": 1}
    code, _, err = await run_cli("--config", write_config(options=options), "run")
    assert code == 78
    assert "devices[0].options.dialect: " in err
    assert "devices[0].options.colour: Extra inputs are not permitted (driver serial_keycutter 0.1.0)" in err


async def test_check_online_compares_configured_devices_with_mews(write_config, mews_simulator):
    mews_simulator.add_device("Reception encoder", "KeyCutter")
    mews_simulator.add_device("Spa printer", "Printer")
    code, out, err = await run_cli("--config", write_config(), "check", "--online")
    assert code == 0, err
    assert (
        "device 'Reception encoder': serial_keycutter 0.1.0 <- Mews device 'Reception encoder'  found (KeyCutter"
        in out
    )
    assert "Mews device 'Spa printer' (Printer" in out and "not configured here" in out


async def test_run_stops_with_a_clear_message_when_mews_refuses_the_tokens(write_config):
    code, _, err = await run_cli("--config", write_config(access_token="WRONG-TOKEN-1234"), "run")
    assert code == 78
    assert "Mews refused the tokens" in err
    assert "WRONG-TOKEN-1234" not in err


async def test_config_example_covers_every_installed_plugin():
    code, listing, _ = await run_cli("plugins", "--json")
    assert code == 0
    plugins = json.loads(listing)
    code, out, _ = await run_cli("config", "example")
    assert code == 0
    drivers = [name for plugin in plugins for name in plugin["drivers"]]
    services = [name for plugin in plugins for name in plugin["services"]]
    assert "serial_keycutter" in drivers
    for driver in drivers:
        assert f'driver = "{driver}"' in out
    for name in services:
        assert f'service = "{name}"' in out
    # options of a plugin appear with their descriptions
    assert "# port = " in out or "port = " in out


async def test_version():
    code, out, _ = await run_cli("--version")
    assert code == 0 and "mews-bridge, version 0.1.0" in out
