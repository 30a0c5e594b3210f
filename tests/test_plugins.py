"""Plugin discovery through real entry points of distributions installed on a temporary path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from mews_bridge.plugins import PluginHost
from mews_bridge.settings import PluginSettings

GOOD = """
from pydantic import BaseModel
import mews_bridge

class Options(BaseModel):
    host: str

class GoodDriver(mews_bridge.DeviceDriver):
    name = "good_printer"
    device_type = "Printer"
    Options = Options
    async def execute(self, job):
        return None

@mews_bridge.hookimpl
def register_drivers(register):
    register(GoodDriver)
"""
BROKEN_IMPORT = "import does_not_exist_anywhere\n"
BROKEN_REGISTER = """
import mews_bridge

@mews_bridge.hookimpl
def register_drivers(register):
    register(object)
"""
CLASHING = GOOD.replace("GoodDriver", "OtherDriver")


def install(site, dist, entry_name, module, source):
    """A minimal installed distribution: a .dist-info with an entry point, and its module."""
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[mews_bridge]\n{entry_name} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    install(site, "vendor-good", "good", "vendor_good", GOOD)
    install(site, "vendor-broken", "broken", "vendor_broken", BROKEN_IMPORT)
    install(site, "vendor-badreg", "badreg", "vendor_badreg", BROKEN_REGISTER)
    install(site, "vendor-clash", "zclash", "vendor_clash", CLASHING)
    monkeypatch.syspath_prepend(str(site))
    yield site
    for module in ("vendor_good", "vendor_broken", "vendor_badreg", "vendor_clash"):
        sys.modules.pop(module, None)


def test_a_broken_plugin_is_skipped_and_reported_while_others_load(site):
    host = PluginHost()
    host.load_entry_points()
    assert host.plugins["good"].status == "loaded"
    assert host.plugins["good"].drivers == ["good_printer"]
    assert host.plugins["good"].version == "1.2.3"
    assert host.drivers["good_printer"].plugin_version == "1.2.3"
    assert host.plugins["broken"].status == "failed"
    assert "does_not_exist_anywhere" in host.plugins["broken"].error
    assert host.plugins["badreg"].status == "failed"
    assert "not a subclass of mews_bridge.DeviceDriver" in host.plugins["badreg"].error
    # the same driver name twice: the second plugin is refused, the first keeps it
    assert host.plugins["zclash"].status == "failed"
    assert "already registered by plugin 'good'" in host.plugins["zclash"].error
    assert host.drivers["good_printer"].__name__ == "GoodDriver"
    # the project's own plugins are unaffected
    assert host.plugins["escpos_printer"].status == "loaded"


def test_a_block_listed_plugin_is_not_loaded(site):
    host = PluginHost(PluginSettings(disable=["good", "broken", "zclash"]))
    host.load_entry_points()
    assert host.plugins["good"].status == "disabled"
    assert "good_printer" not in host.drivers
    assert "vendor_good" not in sys.modules
    assert host.plugins["broken"].status == "disabled"


def test_an_allow_list_loads_only_the_named_plugins(site):
    host = PluginHost(PluginSettings(load=["good"]))
    host.load_entry_points()
    loaded = [name for name, info in host.plugins.items() if info.status == "loaded"]
    assert loaded == ["good"]


def test_plugins_command_lists_versions_registrations_and_errors_as_json(site):
    env = {**os.environ, "PYTHONPATH": str(site), "MEWS_BRIDGE_PLUGINS__DISABLE": "badreg"}
    result = subprocess.run(
        [sys.executable, "-m", "mews_bridge", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["good"]["distribution"] == "vendor-good"
    assert listed["good"]["drivers"] == ["good_printer"]
    assert listed["broken"]["status"] == "failed"
    assert listed["badreg"]["status"] == "disabled"
    assert "Plugin broken skipped" in result.stderr
