"""The plugin as the host and an installer see it: entry point, hook, options, import cost."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pluggy
import pytest
from pydantic import ValidationError

import mews_bridge.hookspecs
import mews_bridge_ipp_printer
from mews_bridge.mews.models import PrinterData
from mews_bridge_ipp_printer.driver import IppPrinterDriver
from mews_bridge_ipp_printer.options import Options


def test_entry_point_names_the_plugin_module():
    (entry,) = [entry for entry in entry_points(group="mews_bridge") if entry.name == "ipp_printer"]
    assert entry.load() is mews_bridge_ipp_printer


def test_hook_registers_the_driver():
    manager = pluggy.PluginManager(mews_bridge.hookspecs.PROJECT)
    manager.add_hookspecs(mews_bridge.hookspecs)
    manager.register(mews_bridge_ipp_printer)
    registered: list[type] = []
    manager.hook.register_drivers(register=registered.append)
    assert registered == [IppPrinterDriver]
    assert (IppPrinterDriver.name, IppPrinterDriver.device_type) == ("ipp_printer", "Printer")
    assert not IppPrinterDriver.replay_safe  # recover() asks the printer first
    assert IppPrinterDriver.data_model() is PrinterData


def test_registering_imports_nothing_heavy():
    """A bridge with the plugin installed and no IPP printer set up holds none of its libraries."""
    probe = (
        "import sys, mews_bridge_ipp_printer.driver; "
        "print(sorted(m for m in ('PIL', 'pypdfium2', 'zeroconf', 'aiohttp', 'pyipp') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_option_is_described():
    assert all(field.description for field in Options.model_fields.values())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"uri": "http://printer/ipp/print"}, "must be an ipp:// or ipps:// address"),
        ({"uri": "ipp:///ipp/print"}, "must be an ipp:// or ipps:// address"),
        ({"uri": "ipps://printer/ipp/print", "tls_fingerprint": "AB:CD"}, "32 bytes"),
        (
            {"uri": "ipp://printer/ipp/print", "tls_fingerprint": ":".join(["AB"] * 32)},
            "only used with an ipps://",
        ),
        ({"uri": "ipp://printer/ipp/print", "sides": "two-sided"}, "sides"),
        ({"uri": "ipp://printer/ipp/print", "verify_tls": False}, "Extra inputs are not permitted"),
    ],
)
def test_wrong_options_are_refused_with_their_reason(options, message):
    with pytest.raises(ValidationError, match=message):
        Options(**options)


def test_config_example_shows_the_driver():
    result = subprocess.run(
        [sys.executable, "-m", "mews_bridge", "config", "example"], capture_output=True, text=True, check=True
    )
    assert 'driver = "ipp_printer"' in result.stdout
    assert 'uri = "ipp://printer.local/ipp/print"' in result.stdout
