"""pytest fixtures for testing mews-bridge drivers and services without the cloud or the hardware.

Installed with ``mews-bridge-hardware-mocks`` (a ``pytest11`` entry point), so any project's tests can
use them without importing anything:

* ``verify_cleanup``: fails a test that leaves tasks, threads or sockets behind (use it autouse in your
  ``conftest.py``);
* ``mews_simulator``: a running Mews Connector API + WebSocket simulator on loopback;
* ``printer_simulator``, ``encoder_simulator``, ``ami_simulator``: the device simulators;
* ``bridge_harness``: a real bridge with your driver, wired to ``mews_simulator``: ``add_device``,
  ``await start()`` (installed plugins, or the ones given), ``push_command(device, data)``,
  ``await wait_final(command_id)`` (``mews_bridge_mocks.bridge_fixtures.example_command_data`` gives
  Mews-shaped command data for each device type).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib.util import find_spec

import pytest

from .leaks import Snapshot

# The printer, encoder and AMI simulators are built from their plugin's codec: their fixtures load
# only where that plugin is installed (a vendor may have none of them).
_FAMILIES = {
    "mews_bridge_escpos_printer": "mews_bridge_mocks.escpos.fixtures",
    "mews_bridge_serial_keycutter": "mews_bridge_mocks.keycutter.fixtures",
    "mews_bridge_asterisk_pbx": "mews_bridge_mocks.ami.fixtures",
    "mews_bridge_ipp_printer": "mews_bridge_mocks.ipp.fixtures",
}
pytest_plugins = [
    "mews_bridge_mocks.mews.fixtures",
    "mews_bridge_mocks.bridge_fixtures",
    *(fixtures for plugin, fixtures in _FAMILIES.items() if find_spec(plugin) is not None),
]


@pytest.fixture
def verify_cleanup() -> Iterator[None]:
    """Fail the test if it leaves threads, sockets or ptys open, or tasks pending."""
    before = Snapshot.take()
    yield
    leaks = before.leaks_since()
    if leaks:
        pytest.fail("test left behind: " + ", ".join(leaks), pytrace=False)


@pytest.fixture
async def verify_no_lingering_tasks() -> None:
    """Fail an async test whose tasks outlive it (request it first so it is torn down last)."""
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    lingering = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in lingering:
        task.cancel()
    if lingering:
        pytest.fail(
            "tasks still running after the test: " + ", ".join(t.get_name() for t in lingering), pytrace=False
        )
