from __future__ import annotations

import pytest

from mews_bridge.exceptions import ConfigurationError
from mews_bridge.settings import load_settings

GOOD = """
[mews]
platform_url = "https://api.mews-demo.com/"
client_token = "CT-0123456789"
access_token = "AT-0123456789"

[bridge]
state_dir = "/tmp/x"

[[devices]]
name = "Reception printer"
mews_device = "Reception printer"
driver = "escpos_printer"
[devices.options]
connection = "tcp://192.168.1.40:9100"
"""


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_toml_file_is_read_and_secrets_stay_secret(tmp_path):
    settings = load_settings(write(tmp_path, GOOD), required=True)
    assert settings.mews.platform_url == "https://api.mews-demo.com"
    assert settings.mews.access_token.get_secret_value() == "AT-0123456789"
    assert "AT-0123456789" not in repr(settings)
    assert settings.devices[0].options == {"connection": "tcp://192.168.1.40:9100"}


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MEWS_BRIDGE_MEWS__ACCESS_TOKEN", "FROM-ENV-123")
    monkeypatch.setenv("MEWS_BRIDGE_BRIDGE__MAX_PARALLEL_DEVICES", "3")
    settings = load_settings(write(tmp_path, GOOD), required=True)
    assert settings.mews.access_token.get_secret_value() == "FROM-ENV-123"
    assert settings.mews.client_token.get_secret_value() == "CT-0123456789"
    assert settings.bridge.max_parallel_devices == 3


def test_a_version_0_1_rate_budget_still_loads_as_requests_per_30s(tmp_path, caplog):
    old = GOOD.replace(
        'access_token = "AT-0123456789"',
        'access_token = "AT-0123456789"\nrate_limit = 100\nrate_headroom = 0.1',
    )
    settings = load_settings(write(tmp_path, old), required=True)
    assert settings.mews.requests_per_30s == 90
    assert "replaced by requests_per_30s (now 90)" in caplog.text
    assert load_settings(write(tmp_path, GOOD), required=True).mews.requests_per_30s == 190


def test_errors_name_the_path_of_each_wrong_setting(tmp_path):
    bad = GOOD.replace('state_dir = "/tmp/x"', 'state_dir = "/tmp/x"\nmax_parallel_devices = 0\ncolour = 1')
    bad = bad.replace('driver = "escpos_printer"', "")
    with pytest.raises(ConfigurationError) as error:
        load_settings(write(tmp_path, bad), required=True)
    lines = str(error.value).splitlines()
    assert any(line.startswith("bridge.max_parallel_devices: ") for line in lines)
    assert any(line.startswith("bridge.colour: ") for line in lines)
    assert any(line.startswith("devices[0].driver: ") for line in lines)


def test_missing_file_named_by_the_user_is_an_error(tmp_path):
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings(tmp_path / "nope.toml", required=True)


def test_plugin_lists_accept_commas_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MEWS_BRIDGE_PLUGINS__DISABLE", "asterisk_pbx, fiscal_virtual")
    settings = load_settings(write(tmp_path, GOOD), required=True)
    assert settings.plugins.disable == ["asterisk_pbx", "fiscal_virtual"]
