"""The link and the transport against the simulated encoder, over a real pty pair and a real TCP socket."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from mews_bridge_mocks.keycutter import EncoderSimulator
from mews_bridge_serial_keycutter.codec import ACK, Frame, FrameScanner, build_frame
from mews_bridge_serial_keycutter.dialects import KeyMode, KeyRequest, get_dialect
from mews_bridge_serial_keycutter.link import (
    EncoderBusy,
    EncoderSilent,
    GarbledReply,
    Link,
    LinkTimings,
    PortUnavailable,
)
from mews_bridge_serial_keycutter.transport import SerialTransport

FAST = LinkTimings(ack_timeout_s=0.2, inter_byte_timeout_s=0.2, attempts=3, retry_delay_s=0.01)
SALTO = get_dialect("salto")
REQUEST = KeyRequest(
    mode=KeyMode.NEW,
    count=1,
    encoder="Encoder1",
    rooms=("101",),
    start=datetime(2026, 11, 23, 14),
    end=datetime(2026, 11, 25, 11),
    operator="MewsBridge",
)
FRAME = SALTO.encode_request(REQUEST)


@pytest.fixture
def endpoint():
    """The pty by default; tests that matter on both endpoints parametrize it (pyserial's socket
    close sleeps 0.3 s, so TCP for every test would be slow)."""
    return "pty"


BOTH_ENDPOINTS = pytest.mark.parametrize("endpoint", ["pty", "tcp"])


@pytest.fixture
async def link(encoder_simulator, endpoint):
    url = encoder_simulator.port_url if endpoint == "pty" else encoder_simulator.tcp_url
    transport = SerialTransport(url)
    yield Link(transport, FAST)
    await transport.close()


@BOTH_ENDPOINTS
async def test_handshake_and_reply(link, encoder_simulator):
    await link.probe()
    raw = await link.transact(FRAME, reply_timeout_s=1)
    assert SALTO.decode_reply(raw).code == "CN"
    assert encoder_simulator.requests == [FRAME]
    assert [card.rooms for card in encoder_simulator.encoded_cards] == [("101",)]


async def test_busy_encoder_is_asked_again(link, encoder_simulator):
    encoder_simulator.busy_count = 2
    await link.transact(FRAME, reply_timeout_s=1)
    assert encoder_simulator.busy_count == 0
    assert len(encoder_simulator.encoded_cards) == 1


async def test_encoder_busy_for_good(link, encoder_simulator):
    encoder_simulator.busy_count = 3
    with pytest.raises(EncoderBusy) as caught:
        await link.transact(FRAME, reply_timeout_s=1)
    assert not caught.value.delivered
    assert encoder_simulator.requests == []


@BOTH_ENDPOINTS
async def test_nak_resends_the_frame(link, encoder_simulator):
    encoder_simulator.nak_count = 2
    raw = await link.transact(FRAME, reply_timeout_s=1)
    assert SALTO.decode_reply(raw).code == "CN"
    assert encoder_simulator.nak_count == 0
    assert len(encoder_simulator.encoded_cards) == 1


async def test_nak_retries_are_bounded(link, encoder_simulator):
    encoder_simulator.nak_count = 5
    with pytest.raises(EncoderBusy, match="refused the request 3 times") as caught:
        await link.transact(FRAME, reply_timeout_s=1)
    assert not caught.value.delivered
    assert encoder_simulator.nak_count == 2
    assert encoder_simulator.encoded_cards == []


async def test_silent_encoder(link, encoder_simulator):
    encoder_simulator.silent = True
    with pytest.raises(EncoderSilent, match="does not answer") as caught:
        await link.transact(FRAME, reply_timeout_s=1)
    assert not caught.value.delivered
    assert encoder_simulator.requests == []


@BOTH_ENDPOINTS
async def test_reply_timeout_after_ack_counts_as_delivered(link, encoder_simulator):
    encoder_simulator.slow = 5
    with pytest.raises(EncoderSilent, match=r"No reply from the encoder within 0\.3 s") as caught:
        await link.transact(FRAME, reply_timeout_s=0.3)
    assert caught.value.delivered


async def test_garbled_reply(link, encoder_simulator):
    encoder_simulator.garbage = True
    with pytest.raises(GarbledReply) as caught:
        await link.transact(FRAME, reply_timeout_s=1)
    assert caught.value.delivered


async def test_waiting_is_reported(encoder_simulator):
    encoder_simulator.slow = 0.3
    transport = SerialTransport(encoder_simulator.port_url)
    link = Link(transport, LinkTimings(ack_timeout_s=0.2, progress_interval_s=0.05))
    waited: list[float] = []

    async def on_wait(seconds: float) -> None:
        waited.append(seconds)

    try:
        await link.transact(FRAME, reply_timeout_s=2, on_wait=on_wait)
    finally:
        await transport.close()
    assert len(waited) >= 2
    assert waited == sorted(waited)


async def test_one_transaction_at_a_time(link, encoder_simulator):
    encoder_simulator.slow = 0.1
    other = SALTO.encode_request(KeyRequest(**{**REQUEST.__dict__, "rooms": ("102",)}))
    await asyncio.gather(
        link.transact(FRAME, reply_timeout_s=1),
        link.transact(other, reply_timeout_s=1),
    )
    assert encoder_simulator.overlaps == 0
    assert sorted(card.room for card in encoder_simulator.encoded_cards) == ["101", "102"]


async def test_waiting_does_not_block_the_event_loop(encoder_simulator):
    encoder_simulator.slow = 0.3
    transport = SerialTransport(encoder_simulator.port_url)
    link = Link(transport, FAST)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    try:
        await link.transact(FRAME, reply_timeout_s=2)
    finally:
        beat.cancel()
        await transport.close()
    # 0.3 s of waiting: a loop blocked in pyserial would have let the heartbeat run a handful of times.
    assert ticks >= 15


async def test_port_that_cannot_open():
    link = Link(SerialTransport("socket://127.0.0.1:1"), FAST)
    with pytest.raises(PortUnavailable, match=r"socket://127\.0\.0\.1:1") as caught:
        await link.transact(FRAME, reply_timeout_s=1)
    assert not caught.value.delivered


async def test_port_reopens_after_the_encoder_comes_back():
    first = EncoderSimulator(pty=False)
    await first.start()
    url = first.tcp_url
    port = int(url.rsplit(":", 1)[1])
    transport = SerialTransport(url)
    link = Link(transport, FAST)
    try:
        await link.transact(FRAME, reply_timeout_s=1)
        await first.stop()
        with pytest.raises(PortUnavailable):
            await link.transact(FRAME, reply_timeout_s=1)
        assert not transport.is_open
        async with EncoderSimulator(pty=False, port=port) as second:
            await link.transact(FRAME, reply_timeout_s=1)
            assert len(second.encoded_cards) == 1
    finally:
        await transport.close()


async def test_port_is_exclusive(encoder_simulator):
    first, second = SerialTransport(encoder_simulator.port_url), SerialTransport(encoder_simulator.port_url)
    await first.open()
    try:
        with pytest.raises(OSError):
            await second.open()
    finally:
        await first.close()
        await second.close()


async def test_reply_that_breaks_off_then_a_good_one():
    """An encoder that acknowledges, starts its first reply and stops halfway; later replies are whole.

    The second transaction works only if the link forgets the half frame it was left with.
    """
    requests = 0
    writers: list[asyncio.StreamWriter] = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        writers.append(writer)
        scanner = FrameScanner()
        while data := await reader.read(4096):
            for event in scanner.feed(data):
                writer.write(bytes([ACK]))
                if isinstance(event, Frame):
                    requests += 1
                    reply = build_frame(["CN", "Encoder1"])
                    writer.write(reply[:5] if requests == 1 else reply)

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    transport = SerialTransport(f"socket://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    link = Link(transport, FAST)
    try:
        with pytest.raises(EncoderSilent, match="broke off") as caught:
            await link.transact(FRAME, reply_timeout_s=5)
        assert caught.value.delivered
        raw = await link.transact(FRAME, reply_timeout_s=5)
        assert SALTO.decode_reply(raw).code == "CN"
    finally:
        await transport.close()
        server.close()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()
