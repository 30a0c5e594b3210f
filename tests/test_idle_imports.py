"""An idle ``mews-bridge run`` with a device of every plugin configured has not imported the libraries
that only a job, a scrape or a page needs (they would stay resident: see the README's figures)."""

from __future__ import annotations

import signal
from pathlib import Path

from mews_bridge.testing import bridge_settings, device, service, wait_for, write_settings_file
from mews_bridge_mocks.ami import AmiSimulator
from mews_bridge_mocks.ami.fixtures import SECRET, USERNAME
from mews_bridge_mocks.bridge_process import BridgeProcess
from mews_bridge_mocks.mews import MewsSimulator

TARIFF = Path(__file__).parents[1] / "plugins" / "asterisk_pbx" / "docs" / "tariff.sample.toml"
NOWHERE = "127.0.0.1:9"  # refused: those devices stay "not ready" and retry, as an unplugged one does
FIRST_USE_ONLY = (
    "PIL",  # printing an image or a QR code
    "aiohttp",  # an IPP printer (none configured)
    "babel",  # laying out a fiscal receipt
    "cryptography",  # a fiscal signature (set-up checks the keys in a child process)
    "escpos.printer",  # a text job
    "phonenumbers",  # rating a call
    "prometheus_client",  # a /metrics scrape
    "pypdfium2",  # printing a PDF
    "pyipp",  # an IPP printer
    "qrcode",  # a receipt's QR code
)
# Written when the interpreter exits: every module the bridge imported while it ran.
SITECUSTOMIZE = """
import atexit, os, sys
atexit.register(lambda: open(os.environ["MODULES_FILE"], "w").write("\\n".join(sorted(sys.modules))))
"""


async def test_an_idle_bridge_has_not_imported_what_only_a_job_needs(ami_simulator, tmp_path):
    async with MewsSimulator(currency="PLN", timezone="Europe/Warsaw") as hotel:  # the sample tariff's
        await idle_bridge(hotel, ami_simulator, tmp_path)


async def idle_bridge(mews_simulator: MewsSimulator, ami_simulator: AmiSimulator, tmp_path: Path) -> None:
    devices = [
        device(
            "Printer",
            mews_simulator.add_device("Printer", "Printer"),
            "escpos_printer",
            {"connection": f"tcp://{NOWHERE}"},
        ),
        device(
            "Encoder",
            mews_simulator.add_device("Encoder", "KeyCutter"),
            "serial_keycutter",
            {"port": f"socket://{NOWHERE}", "dialect": "salto", "encoder": "E1"},
        ),
        device(
            "Fiscal",
            mews_simulator.add_device("Fiscal", "FiscalMachine"),
            "fiscal_virtual",
            {
                "profile": "rksv",
                "register_id": "R1",
                "key_id": "U:ATU12345678-K1",
                "currency": "EUR",
                "timezone": "Europe/Vienna",
                "tax_map": {"AT-20": "Normal"},
            },
        ),
    ]
    pbx = {
        "port": ami_simulator.port,
        "username": USERNAME,
        "secret": SECRET,
        "service_id": mews_simulator.service_id("Telephone"),
        "tariff": str(TARIFF),
        "rooms": "{room}",
    }
    settings = bridge_settings(
        mews_simulator, tmp_path / "state", devices=devices, services=[service("PBX", "asterisk_pbx", pbx)]
    )
    config = write_settings_file(settings, tmp_path / "config.toml")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    modules_file = tmp_path / "modules.txt"
    bridge = BridgeProcess(
        config, tmp_path / "bridge.log", {"PYTHONPATH": str(site), "MODULES_FILE": str(modules_file)}
    )
    await bridge.start()
    try:
        await wait_for(lambda: mews_simulator.websocket_connections and ami_simulator.sessions, 30)
        await wait_for(lambda: b"Fiscal register R1 started" in bridge.output(), 30)
    finally:
        assert await bridge.stop(signal.SIGTERM) == 0
    imported = set(modules_file.read_text().split())
    assert "mews_bridge_fiscal_virtual.driver" in imported and "mews_bridge_asterisk_pbx.service" in imported
    assert sorted(m for m in imported if m.split(".")[0] in FIRST_USE_ONLY or m in FIRST_USE_ONLY) == []
