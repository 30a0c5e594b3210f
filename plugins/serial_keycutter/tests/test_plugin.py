"""The plugin as the host and vendors see it: registration, light import, options, dialect registry."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pluggy
import pytest
from pydantic import ValidationError

import mews_bridge_serial_keycutter
from mews_bridge import CommandRejected, hookspecs
from mews_bridge.mews.models import KeyCutterData
from mews_bridge_mocks.keycutter import EncoderSimulator
from mews_bridge_serial_keycutter import IndustryStandardDialect, KeyRequest, register_dialect
from mews_bridge_serial_keycutter.codec import parse_frame
from mews_bridge_serial_keycutter.driver import SerialKeycutterDriver
from mews_bridge_serial_keycutter.options import KeycutterOptions


def test_hook_registers_the_driver():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(mews_bridge_serial_keycutter)
    registered: list[type] = []
    manager.hook.register_drivers(register=registered.append)
    assert registered == [SerialKeycutterDriver]


def test_driver_contract():
    assert SerialKeycutterDriver.name == "serial_keycutter"
    assert SerialKeycutterDriver.device_type == "KeyCutter"
    assert SerialKeycutterDriver.replay_safe is False
    assert SerialKeycutterDriver.data_model() is KeyCutterData
    assert SerialKeycutterDriver.Options is KeycutterOptions


def test_entry_point_names_the_package():
    (entry_point,) = [ep for ep in entry_points(group="mews_bridge") if ep.name == "serial_keycutter"]
    assert entry_point.load() is mews_bridge_serial_keycutter


def test_public_names():
    assert sorted(mews_bridge_serial_keycutter.__all__) == [
        "Dialect",
        "IndustryStandardDialect",
        "KeyMode",
        "KeyRequest",
        "Reply",
        "dialect_names",
        "get_dialect",
        "register_dialect",
        "register_drivers",
    ]


def test_importing_the_plugin_does_not_load_pyserial():
    code = "import sys, mews_bridge_serial_keycutter; print('serial' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"dialect": "vingcard", "encoder": "1"},
            "unknown key-cutter dialect 'vingcard'; known: onity, salto",
        ),
        ({"dialect": "onity", "encoder": "Encoder1"}, "Onity encoders are numbered"),
        ({"dialect": "salto", "encoder": "E1", "timezone": "Europe/Atlantis"}, "unknown time zone"),
        ({"dialect": "salto", "encoder": "E1", "max_keys": 12}, "at most 9 keys"),
        ({"dialect": "salto", "encoder": "E1", "operator": "x" * 25}, "at most 24 characters"),
        ({"dialect": "salto", "encoder": "Enc\r1"}, "control character"),
        ({"dialect": "salto", "encoder": "E1", "eject": "X"}, "'E', 'R' or 'T'"),
        ({"dialect": "salto", "encoder": "E1", "speed": 9600}, "Extra inputs are not permitted"),
    ],
)
def test_options_are_checked(options, message):
    with pytest.raises(ValidationError, match=message):
        KeycutterOptions(port="/dev/ttyUSB0", **options)


def test_every_option_is_described_for_the_example_config():
    assert all(field.description for field in KeycutterOptions.model_fields.values())


class AcmeDialect(IndustryStandardDialect):
    """A made-up vendor: two rooms per card, room numbers of at most 4 characters, four-digit years,
    one print line of 16."""

    name = "test_acme"
    title = "Acme"
    max_rooms = 2
    print_lines = 1
    print_line_length = 16
    date_format = "%Y%m%d%H%M"
    trailing_fields = 1

    def encode_request(self, request: KeyRequest) -> bytes:
        if any(len(room) > 4 for room in request.rooms):
            raise ValueError("Acme rooms are at most 4 characters")
        return super().encode_request(request)

    def _trailing(self, request: KeyRequest) -> list[str]:
        return [request.print_lines[0] if request.print_lines else ""]

    def _parse_trailing(self, fields: list[str]) -> tuple[str, ...]:
        return tuple(field for field in fields if field)


async def test_a_vendor_dialect_runs_over_the_same_link(make_driver, key_data, make_job, stay_dates):
    register_dialect(AcmeDialect(), replace=True)
    async with EncoderSimulator("test_acme", tcp=False) as simulator:
        driver = await make_driver(simulator.port_url, dialect="test_acme")
        notes = await driver.execute(make_job(key_data(KeyCount=2, LastName="Doe-Longname-Family")))
        assert notes == "2 keys for room 101 (1 new, 1 copy)"
        start, _ = stay_dates()
        fields = parse_frame(simulator.requests[0])
        assert fields[:4] == ["CN", "Encoder1", "E", "101"]
        assert fields[7] == f"{start:%Y%m%d}1400"
        assert fields[-1] == "Jane Doe-Longnam"
        assert [card.name for card in simulator.encoded_cards] == ["Jane Doe-Longnam"] * 2
        with pytest.raises(CommandRejected, match="one Acme key opens at most 2 rooms"):
            await driver.execute(make_job(key_data(LockIds=["1", "2", "3"])))
        with pytest.raises(
            CommandRejected, match="Acme rooms are at most 4 characters; no key was cut for room 10001"
        ):
            await driver.execute(make_job(key_data(LockIds=["10001"])))
        assert len(simulator.requests) == 2


def test_register_refuses_a_taken_name():
    with pytest.raises(ValueError, match="'salto' is already registered"):
        register_dialect(mews_bridge_serial_keycutter.get_dialect("salto"))


def test_vendor_dialect_from_an_entry_point(tmp_path):
    """A vendor package declares its dialect in its metadata; a broken one does not hide the others."""
    (tmp_path / "acme_locks.py").write_text(
        textwrap.dedent(
            """
            from mews_bridge_serial_keycutter import IndustryStandardDialect

            class AcmeDialect(IndustryStandardDialect):
                name = "acme"
                title = "Acme"
                date_format = "%Y%m%d%H%M"
                trailing_fields = 0

                def _trailing(self, request):
                    return []

                def _parse_trailing(self, fields):
                    return ()
            """
        )
    )
    dist_info = tmp_path / "acme_locks-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-locks\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[mews_bridge_keycutter.dialects]\nacme = acme_locks:AcmeDialect\nbroken = acme_missing:Dialect\n"
    )
    code = textwrap.dedent(
        """
        import datetime
        from mews_bridge_serial_keycutter import KeyMode, KeyRequest, dialect_names, get_dialect
        print(dialect_names())
        moment = datetime.datetime(2027, 1, 2, 14, 0)
        request = KeyRequest(KeyMode.NEW, 1, "E1", ("101",), moment, moment)
        print(get_dialect("acme").encode_request(request).hex())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    names, frame = result.stdout.splitlines()
    assert names == "['acme', 'onity', 'salto']"
    assert "202701021400" in bytes.fromhex(frame).decode("latin-1")
    assert "Key-cutter dialect 'broken' could not be loaded" in result.stderr
