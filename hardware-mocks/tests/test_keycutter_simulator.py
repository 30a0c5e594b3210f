"""The encoder simulator byte for byte, over real TCP sockets and a real pty."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime

import pytest
import serial

from mews_bridge_mocks.keycutter import EncoderSimulator
from mews_bridge_serial_keycutter.codec import ACK, ENQ, NAK, Frame, FrameScanner, build_frame, frame_intact
from mews_bridge_serial_keycutter.dialects import KeyMode, KeyRequest, get_dialect

# The golden SALTO frame (docs/reference/key-cutters.md, section 5): two new cards for room 101 on Encoder1.
WORKED_EXAMPLE = bytes.fromhex(
    "02 b3 43 4e 32 b3 45 6e 63 6f 64 65 72 31 b3 45 b3 31 30 31 b3 b3 b3 b3 b3 b3"
    "31 34 30 30 32 33 31 31 32 36 b3 31 31 30 30 32 35 31 31 32 36 b3 4d 65 77 73"
    "42 72 69 64 67 65 b3 4a 61 6e 65 20 44 6f 65 b3 b3 b3 30 b3 03 f1"
)
CN2_REPLY = bytes.fromhex("02 b3 43 4e 32 b3 45 6e 63 6f 64 65 72 31 b3 03 ea")
TD_REPLY = bytes.fromhex("02 b3 54 44 b3 03 13")
ES_REPLY = bytes.fromhex("02 b3 45 53 b3 03 15")
QUIET_S = 0.2

# The shipped ``encoder_simulator`` fixture (registering it twice is harmless once the pytest11
# plugin lists it too).
pytest_plugins = ["mews_bridge_mocks.keycutter.fixtures"]


@pytest.fixture(autouse=True)
def _no_leaks(verify_cleanup, verify_no_lingering_tasks):
    """Every test fails if it leaves tasks, threads, sockets or ptys behind."""


def request(
    mode: KeyMode = KeyMode.NEW, rooms: tuple[str, ...] = ("101",), count: int = 1, encoder: str = "1"
):
    return KeyRequest(
        mode=mode,
        count=count,
        encoder=encoder,
        rooms=rooms,
        start=datetime(2026, 11, 23, 14),
        end=datetime(2026, 11, 25, 11),
        operator="MewsBridge",
    )


class Pms:
    """The PMS end of a TCP connection, byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.scanner = FrameScanner()
        self.events: list = []

    @classmethod
    async def connect(cls, simulator: EncoderSimulator) -> Pms:
        host, port = simulator.tcp_url.removeprefix("socket://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_event(self, within: float = 2.0):
        while not self.events:
            data = await asyncio.wait_for(self.reader.read(4096), within)
            self.events += self.scanner.feed(data)
        return self.events.pop(0)

    async def control(self) -> int:
        return (await self.next_event()).byte

    async def frame(self) -> bytes:
        event = await self.next_event()
        while not isinstance(event, Frame):
            event = await self.next_event()
        return event.raw

    async def nothing(self) -> bool:
        try:
            await self.next_event(QUIET_S)
        except TimeoutError:
            return True
        return False

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
async def pms(encoder_simulator):
    connection = await Pms.connect(encoder_simulator)
    yield connection
    await connection.close()


async def test_enq_is_answered_ack(pms):
    await pms.send(bytes([ENQ]))
    assert await pms.control() == ACK


async def test_worked_example_is_acknowledged_and_answered(pms, encoder_simulator):
    await pms.send(WORKED_EXAMPLE)
    assert await pms.control() == ACK
    assert await pms.frame() == CN2_REPLY
    assert encoder_simulator.requests == [WORKED_EXAMPLE]
    cards = encoder_simulator.encoded_cards
    assert len(cards) == 2
    assert cards[0].mode is KeyMode.NEW
    assert (cards[0].room, cards[0].name, cards[0].encoder, cards[0].operator) == (
        "101",
        "Jane Doe",
        "Encoder1",
        "MewsBridge",
    )
    assert (cards[0].start, cards[0].end) == (datetime(2026, 11, 23, 14), datetime(2026, 11, 25, 11))


async def test_bad_lrc_is_naked(pms, encoder_simulator):
    await pms.send(WORKED_EXAMPLE[:-1] + b"\x00")
    assert await pms.control() == NAK
    assert encoder_simulator.encoded_cards == []


async def test_nak_count_then_accepts(pms, encoder_simulator):
    encoder_simulator.nak_count = 1
    frame = get_dialect("salto").encode_request(request())
    await pms.send(frame)
    assert await pms.control() == NAK
    await pms.send(frame)
    assert await pms.control() == ACK
    assert frame_intact(await pms.frame())
    assert encoder_simulator.requests == [frame]


async def test_busy_count_naks_enq(pms, encoder_simulator):
    encoder_simulator.busy_count = 1
    await pms.send(bytes([ENQ, ENQ]))
    assert [await pms.control(), await pms.control()] == [NAK, ACK]


async def test_busy_while_encoding(pms, encoder_simulator):
    encoder_simulator.slow = 5
    frame = get_dialect("salto").encode_request(request())
    await pms.send(frame)
    assert await pms.control() == ACK
    assert await pms.nothing()  # staff have not inserted the card yet
    await pms.send(bytes([ENQ]))
    assert await pms.control() == NAK
    await pms.send(frame)
    assert await pms.control() == NAK
    assert encoder_simulator.overlaps == 1


async def test_error_code_reply(pms, encoder_simulator):
    encoder_simulator.error_code = "TD"
    await pms.send(WORKED_EXAMPLE)
    assert await pms.control() == ACK
    assert await pms.frame() == TD_REPLY
    assert encoder_simulator.encoded_cards == []


async def test_general_error_carries_a_text(pms, encoder_simulator):
    encoder_simulator.error_code = "EG"
    await pms.send(WORKED_EXAMPLE)
    await pms.control()
    reply = get_dialect("salto").decode_reply(await pms.frame())
    assert (reply.code, reply.fields) == ("EG", ("Encoder1", "Simulated lock system failure"))


async def test_unknown_room_and_unknown_encoder(pms, encoder_simulator):
    salto = get_dialect("salto")
    encoder_simulator.rooms = {"101"}
    encoder_simulator.encoder = "Encoder1"
    await pms.send(salto.encode_request(request(rooms=("999",), encoder="Encoder1")))
    await pms.control()
    assert await pms.frame() == TD_REPLY
    await pms.send(salto.encode_request(request(encoder="Encoder7")))
    await pms.control()
    assert salto.decode_reply(await pms.frame()).code == "NC"
    assert encoder_simulator.encoded_cards == []


async def test_malformed_request_is_a_syntax_error(pms):
    await pms.send(build_frame(["XX", "Encoder1"]))
    assert await pms.control() == ACK
    assert await pms.frame() == ES_REPLY


async def test_garbage_reply(pms, encoder_simulator):
    encoder_simulator.garbage = True
    await pms.send(WORKED_EXAMPLE)
    assert await pms.control() == ACK
    reply = await pms.frame()
    assert not frame_intact(reply)
    assert reply[:-1] == CN2_REPLY[:-1]


async def test_silent(pms, encoder_simulator):
    encoder_simulator.silent = True
    await pms.send(bytes([ENQ]) + WORKED_EXAMPLE)
    assert await pms.nothing()
    assert encoder_simulator.requests == []


async def test_new_card_voids_earlier_cards_and_copies_do_not(pms, encoder_simulator):
    salto = get_dialect("salto")
    for mode in (KeyMode.NEW, KeyMode.COPY, KeyMode.NEW, KeyMode.COPY):
        await pms.send(salto.encode_request(request(mode=mode)))
        assert await pms.control() == ACK
        assert salto.error_text(salto.decode_reply(await pms.frame())) is None
    assert [card.valid for card in encoder_simulator.encoded_cards] == [False, False, True, True]
    assert [card.mode for card in encoder_simulator.valid_cards("101")] == [KeyMode.NEW, KeyMode.COPY]


async def test_salto_refuses_a_copy_for_a_room_without_guest(pms):
    salto = get_dialect("salto")
    await pms.send(salto.encode_request(request(mode=KeyMode.COPY)))
    await pms.control()
    assert salto.decode_reply(await pms.frame()).code == "EA"


@pytest.mark.parametrize("encoder_simulator", ["onity"], indirect=True)
async def test_onity_copies_without_check_in(pms, encoder_simulator):
    onity = get_dialect("onity")
    await pms.send(onity.encode_request(request(mode=KeyMode.COPY, count=2)))
    await pms.control()
    assert onity.decode_reply(await pms.frame()).code == "CC2"
    assert [card.mode for card in encoder_simulator.encoded_cards] == [KeyMode.COPY] * 2


async def test_pty_endpoint(encoder_simulator):
    def exchange() -> bytes:
        with serial.Serial(encoder_simulator.port_url, timeout=2) as port:
            port.write(bytes([ENQ]) + WORKED_EXAMPLE)
            return port.read(2 + len(CN2_REPLY))

    assert await asyncio.to_thread(exchange) == bytes([ACK, ACK]) + CN2_REPLY
    assert len(encoder_simulator.encoded_cards) == 2


async def test_stop_ends_open_connections():
    simulator = EncoderSimulator(pty=False)
    await simulator.start()
    pms = await Pms.connect(simulator)
    await pms.send(bytes([ENQ]))
    assert await pms.control() == ACK
    await simulator.stop()
    assert await asyncio.wait_for(pms.reader.read(1), 2) == b""
    await pms.close()


async def test_command_line():
    """``mews-bridge-mocks encoder`` prints its port, then every card it encodes."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from mews_bridge_mocks.cli import main; main()",
        "encoder",
        "--no-pty",
        "--dialect",
        "onity",
        stdout=asyncio.subprocess.PIPE,
    )

    async def line() -> str:
        return (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()

    try:
        assert (await line()).startswith("Encoder simulator (Onity)")
        host, port = (await line()).removeprefix("port: socket://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(get_dialect("onity").encode_request(request(rooms=("101", "102"))))
        assert await asyncio.wait_for(reader.read(1), 5) == bytes([ACK])
        assert (
            await line()
            == "card: new rooms=101,102 valid 2026-11-23 14:00 -> 2026-11-25 11:00 name='' encoder='1'"
        )
        writer.close()
        await writer.wait_closed()
    finally:
        process.terminate()
        await process.wait()
