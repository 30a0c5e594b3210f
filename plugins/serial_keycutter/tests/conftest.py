from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from mews_bridge import CommandJob, InstanceContext
from mews_bridge.journal import Journal, KeyValueStore
from mews_bridge.mews.models import Device, DeviceCommand, KeyCutterData
from mews_bridge.testing import instance_context
from mews_bridge_mocks.keycutter.fixtures import encoder_simulator  # noqa: F401 - fixture
from mews_bridge_serial_keycutter.driver import SerialKeycutterDriver
from mews_bridge_serial_keycutter.options import KeycutterOptions

DEVICE_NAME = "Reception encoder"
# Asia/Tokyo has no daylight saving time, so expected local times do not depend on the test date.
TIMEZONE = "Asia/Tokyo"


def _stay_dates() -> tuple[datetime, datetime]:
    """Tomorrow 05:00 UTC (14:00 in Tokyo) to the day after next 02:00 UTC (11:00 in Tokyo)."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=5, minute=0, second=0, microsecond=0)
    return tomorrow, tomorrow + timedelta(days=1, hours=21)


def _key_data(**overrides: Any) -> dict[str, Any]:
    start, end = _stay_dates()
    data: dict[str, Any] = {
        "KeyCount": 1,
        "LockIds": ["101"],
        "StartUtc": start.isoformat().replace("+00:00", "Z"),
        "EndUtc": end.isoformat().replace("+00:00", "Z"),
        "FirstName": "Jane",
        "LastName": "Doe",
        "ReservationId": "res-1",
    }
    data.update(overrides)
    return data


_command_ids = itertools.count(1)


def _make_job(
    data: dict[str, Any], command_id: str | None = None, reported: asyncio.Event | None = None
) -> CommandJob[KeyCutterData]:
    """A job for ``data`` whose progress reports collect in ``job.progress_reports`` (and set
    ``reported``)."""
    command = DeviceCommand(
        id=command_id or f"cmd-{next(_command_ids)}",
        state="Processing",
        created_utc=datetime.now(UTC),
        device=Device(id="device-1", name=DEVICE_NAME, type="KeyCutter"),
        data=data,
    )
    reports: list[float] = []

    async def report(fraction: float) -> None:
        reports.append(fraction)
        if reported is not None:
            reported.set()

    job = CommandJob(command, KeyCutterData.model_validate(data), report)
    job.progress_reports = reports  # type: ignore[attr-defined]
    return job


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads, sockets or ptys behind (a port left open)."""


# Helpers as fixtures: with --import-mode=importlib a test module cannot import conftest.


@pytest.fixture
def device_name() -> str:
    return DEVICE_NAME


@pytest.fixture
def stay_dates():
    return _stay_dates


@pytest.fixture
def key_data():
    return _key_data


@pytest.fixture
def make_job():
    return _make_job


@pytest_asyncio.fixture
async def store(tmp_path) -> AsyncIterator[KeyValueStore]:
    """The driver's key state in a real journal, as the bridge keeps it (``ctx.store``)."""
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    yield journal.store(f"device:{DEVICE_NAME}")
    await journal.close()


@pytest.fixture
def make_ctx(tmp_path):
    def factory(store: KeyValueStore, enterprise_timezone: str = "Europe/Prague") -> InstanceContext:
        async def enterprise() -> SimpleNamespace:
            return SimpleNamespace(timezone=ZoneInfo(enterprise_timezone))

        return instance_context(tmp_path, DEVICE_NAME, store=store, enterprise=enterprise)

    return factory


@pytest_asyncio.fixture
async def make_driver(make_ctx, store):
    """Set up drivers with short timeouts; they are unloaded after the test."""
    drivers: list[SerialKeycutterDriver] = []

    async def factory(
        port: str, *, ctx: InstanceContext | None = None, **options: Any
    ) -> SerialKeycutterDriver:
        settings: dict[str, Any] = {
            "dialect": "salto",
            "encoder": "Encoder1",
            "timezone": TIMEZONE,
            "ack_timeout_s": 0.3,
            "card_timeout_s": 1.0,
        }
        settings.update(options)
        driver = SerialKeycutterDriver(ctx or make_ctx(store), KeycutterOptions(port=port, **settings))
        await driver.setup()
        drivers.append(driver)
        return driver

    yield factory
    for driver in drivers:
        await driver.unload()
