from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from mews_bridge.testing import write_settings_file
from mews_bridge_asterisk_pbx.service import AsteriskPbxService
from mews_bridge_mocks.ami import AmiSimulator
from mews_bridge_mocks.ami.fixtures import SECRET, USERNAME
from mews_bridge_mocks.mews import MewsSimulator

TARIFF = Path(__file__).parents[1] / "docs" / "tariff.sample.toml"
PBX_TIMEZONE = "Europe/Warsaw"
SERVICE_NAME = "Telephone exchange"


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads or sockets behind."""


@pytest_asyncio.fixture
async def pbx():
    """An Asterisk 22 AMI in Warsaw, where the sample tariff's hotel is."""
    async with AmiSimulator(
        username=USERNAME, secret=SECRET, auth_failure_delay=0.0, write_timeout=1.0, timezone=PBX_TIMEZONE
    ) as sim:
        yield sim


@pytest_asyncio.fixture(params=["Gross"])
async def hotel(request):
    """The Mews simulator billing in the sample tariff's currency; ``params`` picks the pricing mode."""
    async with MewsSimulator(currency="PLN", timezone=PBX_TIMEZONE, pricing=request.param) as sim:
        yield sim


@pytest.fixture
def pbx_options(pbx, hotel):
    """Options of an asterisk_pbx service wired to both simulators, with quick retries."""
    categories = {
        call_class: hotel.accounting_category_id(f"Telephone {call_class}")
        for call_class in ("local", "national", "mobile", "international", "premium")
    }
    return {
        "host": "127.0.0.1",
        "port": pbx.port,
        "username": USERNAME,
        "secret": SECRET,
        "service_id": hotel.service_id("Telephone"),
        "tariff": str(TARIFF),
        "rooms": "{room}",
        "timezone": PBX_TIMEZONE,
        "accounting_categories": categories,
        "retry_max_s": 0.2,
    }


@pytest.fixture
def mews_simulator(hotel):
    """The hotel is the Mews simulator ``bridge_harness`` wires the bridge to."""
    return hotel


@pytest.fixture
def settings(bridge_harness, pbx_options):
    """Bridge settings with the asterisk_pbx service as the only instance (``bridge_harness``'s)."""
    bridge_harness.add_service(SERVICE_NAME, AsteriskPbxService, pbx_options)
    return bridge_harness.settings()


@pytest.fixture
def write_config(tmp_path, bridge_harness, pbx_options):
    """Writes a settings file with the service, ``changes`` on top of its options; of the call
    classes only international has its category. Call it once per test."""

    def write(**changes):
        categories = {"international": pbx_options["accounting_categories"]["international"]}
        options = {**pbx_options, "accounting_categories": categories, **changes}
        bridge_harness.add_service(SERVICE_NAME, AsteriskPbxService, options)
        return str(write_settings_file(bridge_harness.settings(), tmp_path / "config.toml"))

    return write


@pytest.fixture
def config_file(write_config):
    return write_config()
