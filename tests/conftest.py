from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from mews_bridge.testing import bridge_settings, device, service


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every core test fails if it leaves tasks, threads or sockets behind."""


def _load_scripted_plugin():
    """The scripted test plugin, loaded by path (tests are not a package; subprocess tests copy the file)."""
    path = Path(__file__).with_name("scripted_plugin.py")
    spec = importlib.util.spec_from_file_location("scripted_plugin", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["scripted_plugin"] = module
    spec.loader.exec_module(module)
    return module


SCRIPTED = _load_scripted_plugin()


@pytest.fixture
def scripted():
    return SCRIPTED


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "runs.log"
    path.touch()
    return path


@pytest.fixture
def devices(mews_simulator):
    return {
        "printer": mews_simulator.add_device("Desk printer", "Printer"),
        "cutter": mews_simulator.add_device("Desk encoder", "KeyCutter"),
    }


@pytest.fixture
def settings(mews_simulator, devices, tmp_path, log_file):
    def make(mews=None, **bridge):
        return bridge_settings(
            mews_simulator,
            tmp_path / "state",
            devices=[
                device("Desk printer", devices["printer"], "scripted_printer", {"log_file": log_file}),
                device("Key encoder", "desk encoder", "scripted_cutter", {"log_file": log_file}),
            ],
            services=[service("Recorder", "event_recorder")],
            mews=mews,
            bridge=bridge,
        )

    return make
