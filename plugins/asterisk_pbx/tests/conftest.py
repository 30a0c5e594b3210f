from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from mews_bridge.testing import bridge_settings, service
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
def settings(hotel, pbx_options, tmp_path):
    """Bridge settings with the asterisk_pbx service as the only instance."""
    return bridge_settings(
        hotel, tmp_path / "state", services=[service(SERVICE_NAME, "asterisk_pbx", pbx_options)]
    )


CONFIG = """
[mews]
platform_url = "{platform}"
websocket_url = "{websocket}"
client_token = "{client_token}"
access_token = "{access_token}"

[bridge]
state_dir = "{state}"

[[services]]
name = "Telephone exchange"
service = "asterisk_pbx"
[services.options]
port = {port}
username = "{username}"
secret = "{secret}"
service_id = "{service_id}"
tariff = "{tariff}"
timezone = "Europe/Warsaw"
retry_max_s = 0.2
[services.options.accounting_categories]
international = "{international}"
"""


@pytest.fixture
def config_file(tmp_path, hotel, pbx_options):
    options = pbx_options
    path = tmp_path / "config.toml"
    path.write_text(
        CONFIG.format(
            platform=hotel.platform_url,
            websocket=hotel.websocket_url,
            client_token=hotel.client_token,
            access_token=hotel.access_token,
            state=tmp_path / "state",
            international=options["accounting_categories"]["international"],
            **options,
        )
    )
    return str(path)
