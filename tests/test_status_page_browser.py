"""The status page in a real browser (Debian's chromium, driven by Playwright), against a bridge running
the printer and PBX plugins on their simulators: a printer runs out of paper and is refilled, a charge
Mews refused is retried from the page, and /metrics moves with it. A phone-sized screenshot of the
page (and one with the failed charge) is written to ``test-artifacts/`` (or ``$MEWS_BRIDGE_ARTIFACTS``).

Chromium is Debian's (``.ci/run`` installs it): Playwright never downloads a browser. Without one the
test is skipped, unless ``MEWS_BRIDGE_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect
from prometheus_client.parser import text_string_to_metric_families

from mews_bridge.testing import (
    bridge_settings,
    device,
    running_bridge,
    service,
    wait_for,
    wait_for_final_state,
)
from mews_bridge_mocks.ami import AmiSimulator
from mews_bridge_mocks.ami.fixtures import SECRET, USERNAME
from mews_bridge_mocks.bridge_fixtures import example_command_data
from mews_bridge_mocks.mews import MewsSimulator

CHROMIUM = Path(os.environ.get("MEWS_BRIDGE_CHROMIUM", "/usr/bin/chromium"))
# What a headless Chromium needs in a container, and nothing that reaches beyond loopback.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("MEWS_BRIDGE_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
TARIFF = Path(__file__).parents[1] / "plugins" / "asterisk_pbx" / "docs" / "tariff.sample.toml"
WARSAW = "Europe/Warsaw"
TOKEN = "front-office-token-0123456789"
PRINTER = "Reception printer"
PAGE_RELOADS_WITHIN_MS = 30_000  # the page reloads itself every second here; a loaded CI machine is slower

if not CHROMIUM.exists():
    if os.environ.get("MEWS_BRIDGE_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    pytest.skip(f"no browser at {CHROMIUM} (Debian: apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.timeout(120)


def _counters(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        response.raise_for_status()
        return _counters(response.text)


def _pbx_options(hotel: MewsSimulator, pbx: AmiSimulator) -> dict[str, object]:
    return {
        "host": "127.0.0.1",
        "port": pbx.port,
        "username": USERNAME,
        "secret": SECRET,
        "service_id": hotel.service_id("Telephone"),
        "tariff": str(TARIFF),
        "rooms": "{room}",
        "timezone": WARSAW,
        "accounting_categories": {
            call_class: hotel.accounting_category_id(f"Telephone {call_class}")
            for call_class in ("local", "national", "mobile", "international", "premium")
        },
        "retry_max_s": 0.2,
    }


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


async def _sign_in(page: Page, url: str) -> None:
    await page.goto(url)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Token").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#mews-link")).to_contain_text("connected since")


async def test_the_status_page_follows_the_printer_and_retries_a_refused_charge(
    tmp_path, printer_simulator, artifacts
):
    async with (
        MewsSimulator(currency="PLN", timezone=WARSAW) as hotel,
        AmiSimulator(username=USERNAME, secret=SECRET, auth_failure_delay=0.0, timezone=WARSAW) as pbx,
    ):
        printer_id = hotel.add_device(PRINTER, "Printer")
        anna = hotel.add_customer("Huber", "Anna")
        hotel.add_reservation(anna, hotel.resource_id("101"), "Started")
        settings = bridge_settings(
            hotel,
            tmp_path / "state",
            devices=[
                device(
                    PRINTER,
                    PRINTER,
                    "escpos_printer",
                    {"connection": printer_simulator.url, "profile": "TM-T20II", "status_poll_s": 0.2},
                )
            ],
            services=[service("Telephone exchange", "asterisk_pbx", _pbx_options(hotel, pbx))],
            bridge={"http_token": TOKEN, "page_refresh_s": 1},
        )
        async with running_bridge(settings, entry_points=True) as bridge, async_playwright() as playwright:
            for managed in bridge.instances:
                await managed.wait_loaded()
            url = bridge.http.url
            before = await _metrics(url)
            # A fresh profile (Playwright's --user-data-dir), phone-sized.
            browser = await playwright.chromium.launch_persistent_context(
                tmp_path / "chromium-profile",
                executable_path=str(CHROMIUM),
                args=CHROMIUM_FLAGS,
                viewport={"width": 390, "height": 844},
                device_scale_factor=2,
            )
            try:
                page = await browser.new_page()
                await _sign_in(page, url)
                printer = page.locator(f'section[data-name="{PRINTER}"]')
                await expect(printer.locator('[data-field="state"]')).to_have_text("up")
                await expect(page.locator("header")).to_contain_text("ready")

                # The roll runs out: the page says so before anyone prints, and a printout fails.
                printer_simulator.status = "paper_out"
                await expect(printer.locator('[data-fact="paper"]')).to_have_text(
                    "out", timeout=PAGE_RELOADS_WITHIN_MS
                )
                failed = hotel.add_command(printer_id, example_command_data("Printer"))
                ended = await wait_for_final_state(hotel, failed)
                paper_out = f"Paper out on {PRINTER}. Load a new roll and print again."
                assert (ended["State"], ended["Notes"]) == ("Error", paper_out)
                await expect(printer).to_contain_text(paper_out, timeout=PAGE_RELOADS_WITHIN_MS)

                # A new roll: the page shows paper again, and the next receipt prints.
                printer_simulator.status = "online"
                await expect(printer.locator('[data-fact="paper"]')).to_have_text(
                    "ok", timeout=PAGE_RELOADS_WITHIN_MS
                )
                printed = hotel.add_command(printer_id, example_command_data("Printer"))
                assert (await wait_for_final_state(hotel, printed))["State"] == "Processed"
                await expect(printer.locator('[data-field="last-command"]')).to_contain_text(
                    "Processed", timeout=PAGE_RELOADS_WITHIN_MS
                )

                # Mews refuses a call charge: it shows as failed with Mews' reason and a Retry button.
                hotel.faults.fail_operation("orders/add", times=1, status=400, message="Invalid ServiceId.")
                await pbx.place_call("101", "00442071234567", billsec=60)
                charge = page.locator("tr[data-charge]")
                await expect(charge).to_contain_text("failed", timeout=PAGE_RELOADS_WITHIN_MS)
                await expect(charge).to_contain_text("Invalid ServiceId.")
                assert hotel.orders == []
                await page.screenshot(path=artifacts / "status-page-failed-charge.png", full_page=True)
                await charge.get_by_role("button", name="Retry").click()
                await expect(page.get_by_role("status")).to_contain_text("will be posted again")
                await wait_for(lambda: len(hotel.orders) == 1, what="the order after the retry")
                await expect(page.locator("tr[data-charge]")).to_have_count(0, timeout=PAGE_RELOADS_WITHIN_MS)
                await expect(page.get_by_text("1 posted today")).to_be_visible()

                # The last commands table lists both printouts.
                await expect(page.locator("table").last).to_contain_text("Paper out on")
                await page.screenshot(path=artifacts / "status-page.png", full_page=True)
            finally:
                await browser.close()
            after = await _metrics(url)

    def moved(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("mews_bridge_commands_total", device=PRINTER, state="Error") == 1
    assert moved("mews_bridge_commands_total", device=PRINTER, state="Processed") == 1
    assert moved("mews_bridge_charges_total", service="Telephone exchange", outcome="failed") == 1
    assert moved("mews_bridge_charges_total", service="Telephone exchange", outcome="posted") == 1
    assert moved("mews_bridge_mews_requests_total", operation="orders/add", status="400") == 1
    assert (artifacts / "status-page.png").stat().st_size > 10_000
