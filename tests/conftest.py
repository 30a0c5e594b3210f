from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


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
