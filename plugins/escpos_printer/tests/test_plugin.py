"""The plugin as the host sees it: entry point, hook, driver class, import cost."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pluggy

import mews_bridge.hookspecs
import mews_bridge_escpos_printer
from mews_bridge.mews.models import PrinterData
from mews_bridge_escpos_printer.driver import EscposPrinterDriver


def test_entry_point_names_the_plugin_module():
    (entry,) = [entry for entry in entry_points(group="mews_bridge") if entry.name == "escpos_printer"]
    assert entry.load() is mews_bridge_escpos_printer


def test_hook_registers_the_driver():
    manager = pluggy.PluginManager(mews_bridge.hookspecs.PROJECT)
    manager.add_hookspecs(mews_bridge.hookspecs)
    manager.register(mews_bridge_escpos_printer)
    registered: list[type] = []
    manager.hook.register_drivers(register=registered.append)
    assert registered == [EscposPrinterDriver]
    assert (EscposPrinterDriver.name, EscposPrinterDriver.device_type) == ("escpos_printer", "Printer")
    assert EscposPrinterDriver.replay_safe
    assert EscposPrinterDriver.data_model() is PrinterData


def test_registering_imports_nothing_heavy():
    probe = (
        "import sys, mews_bridge_escpos_printer.driver; "
        "print(sorted(m for m in ('PIL', 'pypdfium2', 'escpos', 'serial', 'usb') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_setting_up_a_printer_leaves_python_escpos_and_pillow_for_the_first_job(tmp_path):
    """The profile is resolved at set-up; the libraries that print wait for a job (idle memory)."""
    probe = (
        "import sys, pathlib; "
        "from mews_bridge_escpos_printer.codec import load_model; "
        "from mews_bridge_escpos_printer.options import Options; "
        f"model = load_model(Options(connection='tcp://printer', profile='TM-T20II'), pathlib.Path({str(tmp_path)!r})); "
        "print(model.dots, model.cut, sorted(m for m in ('PIL', 'pypdfium2', 'escpos.printer', "
        "'escpos.capabilities', 'qrcode', 'yaml', 'usb') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "576 full []"
