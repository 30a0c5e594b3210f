"""A simulated lock encoder (the lock server's PMS port) speaking the Industry Standard protocol.

It is built from the ``serial_keycutter`` plugin's own codec with the roles reversed: it scans for
requests and wraps replies. It listens on a pty pair (give :attr:`EncoderSimulator.port_url` to
pyserial as if it were ``/dev/ttyUSB0``) and on TCP (:attr:`EncoderSimulator.tcp_url`, a
``socket://`` URL), keeps every card it encoded for assertions, and misbehaves on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mews_bridge_serial_keycutter.codec import (
    ACK,
    ENQ,
    NAK,
    Control,
    Event,
    Frame,
    FrameScanner,
    frame_intact,
    parse_frame,
)
from mews_bridge_serial_keycutter.dialects import KeyMode, KeyRequest, Reply, get_dialect

from ..running import Simulator

LOGGER = logging.getLogger(__name__)

GARBAGE = b"\x7f\xfe\x00garbage"


@dataclass
class EncodedCard:
    """A card the simulator encoded."""

    mode: KeyMode
    rooms: tuple[str, ...]
    start: datetime
    end: datetime
    name: str
    """The first printed line ("" if the dialect prints nothing)."""
    encoder: str
    operator: str
    valid: bool = True
    """False once a new card for one of its rooms voided it."""

    @property
    def room(self) -> str:
        return self.rooms[0]


class EncoderSimulator(Simulator):
    """An encoder on a pty pair and on TCP.

    Faults (attributes, change them at any time):

    * ``slow``: seconds staff take to insert each card before the reply;
    * ``nak_count``: NAK this many request frames (then accept again);
    * ``busy_count``: answer NAK to this many ENQs;
    * ``garbage``: reply with noise and a frame whose LRC is wrong;
    * ``error_code``: reply with this error code (``EP``, ``TD``, …) instead of encoding;
    * ``silent``: answer nothing at all;
    * ``rooms``: the rooms the lock system knows (others get ``TD``); None knows every room;
    * ``encoder``: the only encoder address answered (others get ``NC``); None answers any.
    """

    def __init__(
        self,
        dialect: str = "salto",
        *,
        pty: bool = True,
        tcp: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        encoder: str | None = None,
        rooms: set[str] | None = None,
        slow: float = 0.0,
        nak_count: int = 0,
        busy_count: int = 0,
        garbage: bool = False,
        error_code: str | None = None,
        silent: bool = False,
        on_card: Callable[[EncodedCard], Any] | None = None,
        on_bytes: Callable[[bytes], Any] | None = None,
    ) -> None:
        self.dialect = get_dialect(dialect)
        self.encoder = encoder
        self.rooms = rooms
        self.slow = slow
        self.nak_count = nak_count
        self.busy_count = busy_count
        self.garbage = garbage
        self.error_code = error_code
        self.silent = silent
        self.on_card = on_card
        self.on_bytes = on_bytes
        """Called with each chunk the moment it arrives, before it is read as frames (latency benches)."""
        self.encoded_cards: list[EncodedCard] = []
        self.requests: list[bytes] = []
        """Every request frame accepted (ACKed), byte for byte."""
        self.overlaps = 0
        """Request frames that arrived while a previous one was still being encoded."""
        self.port_url: str | None = None
        self.tcp_url: str | None = None
        self._want_pty = pty
        self._want_tcp = tcp
        self._host = host
        self._port = port
        self._checked_in: set[str] = set()
        self._busy = False
        self._fds: tuple[int, int] | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def valid_cards(self, room: str) -> list[EncodedCard]:
        """Cards that still open ``room``."""
        return [card for card in self.encoded_cards if card.valid and room in card.rooms]

    async def start(self) -> None:
        if self._want_pty:
            master, slave = os.openpty()
            # Raw: the line discipline must not echo or turn a 0x0D LRC into 0x0A. Keeping the slave
            # open means the master never sees EIO when a client closes its end.
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._fds = (master, slave)
            self.port_url = os.ttyname(slave)
            scanner = FrameScanner()
            asyncio.get_running_loop().add_reader(master, self._pty_readable, master, scanner)
        if self._want_tcp:
            self._server = await asyncio.start_server(self._tcp_client, self._host, self._port)
            host, port = self._server.sockets[0].getsockname()[:2]
            self.tcp_url = f"socket://{host}:{port}"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._fds is not None:
            asyncio.get_running_loop().remove_reader(self._fds[0])
            for fd in self._fds:
                os.close(fd)
            self._fds = None
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    # Endpoints

    def _pty_readable(self, master: int, scanner: FrameScanner) -> None:
        try:
            data = os.read(master, 4096)
        except BlockingIOError:
            return
        self._arrived(data)
        for event in scanner.feed(data):
            self._handle(event, lambda reply: self._pty_write(master, reply))

    @staticmethod
    def _pty_write(master: int, data: bytes) -> None:
        try:
            os.write(master, data)
        except BlockingIOError:
            LOGGER.warning("Encoder simulator: pty full (nobody reading), dropped %d bytes", len(data))

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # so that stop() ends the connection's handler too
        self._writers.add(writer)
        scanner = FrameScanner()
        try:
            with contextlib.suppress(ConnectionError):  # the client went away: nothing to answer
                while data := await reader.read(4096):
                    self._arrived(data)
                    for event in scanner.feed(data):
                        self._handle(event, writer.write)
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()

    def _arrived(self, data: bytes) -> None:
        if self.on_bytes is not None:
            self.on_bytes(data)

    # The encoder

    def _handle(self, event: Event, write: Callable[[bytes], Any]) -> None:
        if self.silent:
            return
        if isinstance(event, Control) and event.byte == ENQ:
            if self._busy or self.busy_count > 0:
                self.busy_count = max(self.busy_count - 1, 0)
                write(bytes([NAK]))
            else:
                write(bytes([ACK]))
        elif isinstance(event, Frame):
            if not frame_intact(event.raw):
                write(bytes([NAK]))
            elif self._busy:
                self.overlaps += 1
                write(bytes([NAK]))
            elif self.nak_count > 0:
                self.nak_count -= 1
                write(bytes([NAK]))
            else:
                write(bytes([ACK]))
                self.requests.append(event.raw)
                self._busy = True
                task = asyncio.get_running_loop().create_task(self._process(event.raw, write))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _process(self, raw: bytes, write: Callable[[bytes], Any]) -> None:
        try:
            try:
                request = self.dialect.decode_request(raw)
            except ValueError as exc:
                LOGGER.info("Encoder simulator: bad request (%s)", exc)
                reply = Reply("ES")
            else:
                await asyncio.sleep(self.slow * request.count)
                reply = self._encode(request, parse_frame(raw)[0])
            if self.silent:
                return
            frame = self.dialect.encode_reply(reply)
            if self.garbage:
                frame = GARBAGE + frame[:-1] + bytes([frame[-1] ^ 0xFF])
            write(frame)
        finally:
            self._busy = False

    def _encode(self, request: KeyRequest, command: str) -> Reply:
        if self.error_code:
            detail = (request.encoder, "Simulated lock system failure") if self.error_code == "EG" else ()
            return Reply(self.error_code, detail)
        if self.encoder is not None and request.encoder != self.encoder:
            return Reply("NC")
        if self.rooms is not None and not set(request.rooms) <= self.rooms:
            return Reply("TD")
        refused = self.dialect.copy_refused_code
        if request.mode is KeyMode.COPY and refused and not set(request.rooms) <= self._checked_in:
            return Reply(refused)
        if request.mode is KeyMode.NEW:
            # The lock system's rule: a new guest card voids every earlier guest card of its rooms.
            for card in self.encoded_cards:
                if set(card.rooms) & set(request.rooms):
                    card.valid = False
            self._checked_in.update(request.rooms)
        for _ in range(request.count):
            card = EncodedCard(
                mode=request.mode,
                rooms=request.rooms,
                start=request.start,
                end=request.end,
                name=request.print_lines[0] if request.print_lines else "",
                encoder=request.encoder,
                operator=request.operator,
            )
            self.encoded_cards.append(card)
            if self.on_card is not None:
                self.on_card(card)
        return Reply(command, (request.encoder,))
