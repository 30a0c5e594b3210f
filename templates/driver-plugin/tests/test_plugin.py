"""The plugin as an installer sees it: listed by ``mews-bridge plugins``, its options checked and described."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

import pytest
from pydantic import ValidationError

from mews_bridge_my_device.options import MyDeviceOptions


def mews_bridge(*args: str) -> str:
    command = [sys.executable, "-m", "mews_bridge", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def test_mews_bridge_plugins_lists_the_installed_plugin():
    plugins = {plugin["name"]: plugin for plugin in json.loads(mews_bridge("plugins", "--json"))}
    plugin = plugins["my_device"]
    assert (plugin["status"], plugin["error"]) == ("loaded", None)
    assert (plugin["distribution"], plugin["version"]) == (
        "mews-bridge-my-device",
        version("mews-bridge-my-device"),
    )
    assert plugin["drivers"] == ["my_device"]


def test_the_example_settings_describe_every_option():
    example = mews_bridge("config", "example")
    assert 'driver = "my_device"' in example
    for name, field in MyDeviceOptions.model_fields.items():
        assert field.description, f"option {name} has no docstring"
        assert f"# {field.description}" in example


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"host": ""}, "at least 1 character"),
        ({"host": "192.168.1.60", "port": 70000}, "less than or equal to 65535"),
        ({"host": "192.168.1.60", "prot": 9200}, "Extra inputs are not permitted"),
    ],
)
def test_options_are_checked(options, message):
    with pytest.raises(ValidationError, match=message):
        MyDeviceOptions(**options)
