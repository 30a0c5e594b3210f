"""The Raspberry Pi deployment files agree with the code: the systemd unit runs the right command as
the right user and does not restart on bad Mews tokens; the guide's settings examples load."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mews_bridge.bridge import plan_instances
from mews_bridge.cli import EX_CONFIG, main
from mews_bridge.plugins import PluginHost
from mews_bridge.settings import DEFAULT_CONFIG_PATH, BridgeSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "systemd" / "mews-bridge.service"
GUIDE = ROOT / "docs" / "deploy" / "raspberry-pi.md"


def unit_settings() -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values (a key may repeat), as systemd reads the file."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"continuation lines are not expected: {line}"
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key, [])
    assert len(values) == 1, f"{key}= should be set once, found {values}"
    return values[0]


def guide_block(marker: str) -> str:
    """The fenced block right after ``<!-- marker: … -->`` in the guide."""
    match = re.search(rf"<!-- {marker}:[^>]*-->\s*```\w*\n(.*?)```", GUIDE.read_text(), re.S)
    assert match, f"no block marked {marker!r} in {GUIDE}"
    return match.group(1)


@pytest.fixture
def clean_env(monkeypatch):
    for name in [n for n in os.environ if n.startswith("MEWS_BRIDGE_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_unit_runs_the_bridge_as_its_own_user():
    service = unit_settings()["Service"]
    assert one(service, "ExecStart") == f"/opt/mews-bridge/bin/mews-bridge --config {DEFAULT_CONFIG_PATH} run"
    assert "run" in main.commands
    assert any("--config" in param.opts for param in main.params)
    assert one(service, "User") == one(service, "Group") == "mews-bridge"
    assert set(one(service, "SupplementaryGroups").split()) == {"dialout", "lp"}
    assert one(service, "Type") in {"exec", "simple"}


def test_unit_restarts_on_failure_but_not_on_bad_mews_tokens():
    service = unit_settings()["Service"]
    assert EX_CONFIG == 78
    assert one(service, "Restart") == "on-failure"
    assert str(EX_CONFIG) in one(service, "RestartPreventExitStatus").split()
    stop_s = float(one(service, "TimeoutStopSec").removesuffix("s"))
    assert stop_s > BridgeSettings().shutdown_grace_s + 5, "systemd would kill running commands' grace"


def test_unit_state_directory_is_the_settings_default():
    service = unit_settings()["Service"]
    default = BridgeSettings().state_dir
    assert Path("/var/lib") / one(service, "StateDirectory") == default
    assert one(service, "StateDirectoryMode") == "0700"
    assert f"MEWS_BRIDGE_BRIDGE__STATE_DIR={default}" in service["Environment"]
    assert one(service, "EnvironmentFile") == f"-{DEFAULT_CONFIG_PATH.parent}/secrets.env"


def test_unit_sandbox_keeps_its_essentials():
    service = unit_settings()["Service"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "MemoryDenyWriteExecute": "yes",
        "DevicePolicy": "closed",
        "UMask": "0077",
    }.items():
        assert one(service, key) == value, key
    allowed = {entry.split()[0] for entry in service["DeviceAllow"]}
    assert {"char-ttyUSB", "char-ttyACM", "char-usb_device", "char-usb"} <= allowed


def test_guide_quotes_the_unit_as_it_is():
    guide = GUIDE.read_text()
    service = unit_settings()["Service"]
    for key in ("ExecStart", "RestartPreventExitStatus", "TimeoutStopSec", "MemoryMax", "StateDirectory"):
        assert f"{key}={one(service, key)}" in guide, f"the guide does not show {key}={one(service, key)}"


def test_guide_settings_example_loads_and_its_devices_validate(tmp_path, clean_env):
    path = tmp_path / "config.toml"
    path.write_text(guide_block("settings-example"))
    settings = load_settings(path, required=True)
    assert settings.bridge.state_dir == BridgeSettings().state_dir
    assert settings.bridge.shutdown_grace_s < float(
        one(unit_settings()["Service"], "TimeoutStopSec").removesuffix("s")
    )
    host = PluginHost()
    host.load_entry_points()
    assert {d.driver for d in settings.devices} <= set(host.drivers)
    planned = plan_instances(settings, host)
    assert [p.entry.name for p in planned] == [d.name for d in settings.devices]


def test_guide_secrets_env_example_replaces_the_tokens_in_the_file(tmp_path, clean_env):
    config = re.sub(r"(?m)^(client_token|access_token) = .*\n", "", guide_block("settings-example"))
    path = tmp_path / "config.toml"
    path.write_text(config)
    for line in guide_block("secrets-env-example").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            clean_env.setenv(name, value)
    settings = load_settings(path, required=True)
    assert settings.mews.access_token.get_secret_value() == "REPLACE-WITH-THE-ACCESS-TOKEN"
    assert settings.mews.client_token.get_secret_value() == "REPLACE-WITH-THE-CLIENT-TOKEN"
