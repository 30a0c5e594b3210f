"""The link layer: ENQ/ACK handshake, ACK/NAK with bounded retries, timeouts, one transaction per port.

It knows the envelope (control bytes, STX…ETX+LRC) but not what the fields mean, so any dialect in
the Industry Standard family runs over it unchanged.

A transaction, from the PMS side::

    ENQ  ->            (repeated while the encoder answers NAK "busy" or nothing, up to ``attempts``)
         <- ACK
    frame ->
         <- ACK | NAK  (NAK: the encoder dropped the frame; send it again, up to ``attempts``)
         <- reply frame, once the cards are encoded (staff insert each card: a long wait)

Errors say whether the request may have reached the encoder (``delivered``): after an ACK the cards
may be encoded even if the reply never arrives, so the caller must not assume nothing happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from .codec import ACK, ENQ, NAK, Control, Event, Frame, FrameScanner, frame_intact

LOGGER = logging.getLogger(__name__)

# Defaults from the public clients: 2 s for ACK (Onity), three tries 0.2 s apart (SALTO).
ACK_TIMEOUT_S = 2.0
INTER_BYTE_TIMEOUT_S = 2.0
ATTEMPTS = 3
RETRY_DELAY_S = 0.2
PROGRESS_INTERVAL_S = 0.25  # the host throttles what reaches Mews


@dataclass(frozen=True)
class LinkTimings:
    ack_timeout_s: float = ACK_TIMEOUT_S
    """Wait for ACK/NAK after ENQ or a frame."""
    inter_byte_timeout_s: float = INTER_BYTE_TIMEOUT_S
    """Longest gap inside a reply frame once it has started."""
    attempts: int = ATTEMPTS
    """ENQs before giving up on a busy encoder, and sends of a frame the encoder NAKs."""
    retry_delay_s: float = RETRY_DELAY_S
    progress_interval_s: float = PROGRESS_INTERVAL_S
    """How often ``on_wait`` hears about a reply still being awaited."""


class Transport(Protocol):
    url: str

    @property
    def is_open(self) -> bool: ...
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def write(self, data: bytes) -> None: ...
    async def read(self) -> bytes: ...
    async def discard_input(self) -> None: ...


class LinkError(Exception):
    """The exchange failed; the message is in plain words for the front desk."""

    def __init__(self, message: str, *, delivered: bool) -> None:
        super().__init__(message)
        self.delivered = delivered
        """True if the encoder may have carried out the request."""


class PortUnavailable(LinkError):
    """The port cannot be opened or failed (adapter unplugged, serial server gone)."""


class EncoderSilent(LinkError):
    """No answer in time."""


class EncoderBusy(LinkError):
    """The encoder kept answering NAK."""


class GarbledReply(LinkError):
    """A reply frame arrived with a wrong LRC."""


class Link:
    """Half-duplex exchanges with one encoder; concurrent callers queue on a lock."""

    def __init__(
        self, transport: Transport, timings: LinkTimings | None = None, *, enq_before_send: bool = True
    ) -> None:
        self.transport = transport
        self.timings = timings or LinkTimings()
        self.enq_before_send = enq_before_send
        self._lock = asyncio.Lock()
        self._scanner = FrameScanner()
        self._events: deque[Event] = deque()
        self._delivered = False

    async def probe(self) -> None:
        """Check that the encoder answers ENQ with ACK."""
        async with self._lock:
            try:
                await self._begin()
                await self._wait_ready()
            except OSError as exc:
                raise await self._port_failed(exc, delivered=False) from exc

    async def transact(
        self,
        frame: bytes,
        *,
        reply_timeout_s: float,
        on_wait: Callable[[float], Awaitable[None]] | None = None,
    ) -> bytes:
        """Send ``frame`` and return the encoder's reply frame (LRC checked).

        ``on_wait(seconds_waited)`` is awaited every ``progress_interval_s`` while the reply is due.
        """
        async with self._lock:
            self._delivered = False
            try:
                await self._begin()
                await self._send(frame)
                return await self._await_frame(reply_timeout_s, on_wait)
            except OSError as exc:
                raise await self._port_failed(exc, delivered=self._delivered) from exc

    async def _port_failed(self, exc: OSError, *, delivered: bool) -> PortUnavailable:
        # Close so the next transaction reopens: a USB adapter may come back under the same name.
        with contextlib.suppress(OSError):
            await self.transport.close()
        return PortUnavailable(
            f"The encoder port {self.transport.url} is not working ({exc})", delivered=delivered
        )

    async def _begin(self) -> None:
        await self.transport.open()
        await self.transport.discard_input()
        self._scanner.reset()
        self._events.clear()

    async def _wait_ready(self) -> None:
        answer = None
        for attempt in range(self.timings.attempts):
            if attempt:
                await asyncio.sleep(self.timings.retry_delay_s)
            await self.transport.write(bytes([ENQ]))
            answer = await self._await_control(self.timings.ack_timeout_s)
            if answer == ACK:
                return
            LOGGER.debug("ENQ answered with %s", "NAK" if answer == NAK else "silence")
        if answer is None:
            raise EncoderSilent("The encoder does not answer", delivered=False)
        raise EncoderBusy("The encoder is busy", delivered=False)

    async def _send(self, frame: bytes) -> None:
        for attempt in range(self.timings.attempts):
            if attempt:
                await asyncio.sleep(self.timings.retry_delay_s)
            if self.enq_before_send:
                await self._wait_ready()
            await self.transport.write(frame)
            self._delivered = True
            answer = await self._await_control(self.timings.ack_timeout_s)
            if answer == ACK:
                return
            if answer is None:
                # Perhaps only the ACK was lost: sending again could encode the cards twice.
                raise EncoderSilent("The encoder did not acknowledge the request", delivered=True)
            self._delivered = False  # a NAKed frame is dropped by the encoder
            LOGGER.info(
                "Encoder answered NAK to the request (attempt %d of %d)", attempt + 1, self.timings.attempts
            )
        raise EncoderBusy(
            f"The encoder refused the request {self.timings.attempts} times (busy or line errors)",
            delivered=False,
        )

    async def _await_control(self, timeout_s: float) -> int | None:
        """The next ACK or NAK within ``timeout_s``; None on silence. Anything else is skipped."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Control) and event.byte in (ACK, NAK):
                    return event.byte
                LOGGER.debug("Skipping %r while waiting for ACK", event)
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await self._receive()

    async def _await_frame(
        self, timeout_s: float, on_wait: Callable[[float], Awaitable[None]] | None
    ) -> bytes:
        loop = asyncio.get_running_loop()
        started = last_byte = loop.time()
        next_progress = started + self.timings.progress_interval_s
        while True:
            while self._events:
                event = self._events.popleft()
                if isinstance(event, Frame):
                    if not frame_intact(event.raw):
                        raise GarbledReply("The encoder's reply was garbled", delivered=True)
                    return event.raw
                LOGGER.debug("Skipping %r while waiting for the reply", event)
            now = loop.time()
            if self._scanner.in_frame and now >= last_byte + self.timings.inter_byte_timeout_s:
                raise EncoderSilent("The encoder's reply broke off", delivered=True)
            if not self._scanner.in_frame and now >= started + timeout_s:
                raise EncoderSilent(f"No reply from the encoder within {timeout_s:g} s", delivered=True)
            if on_wait is not None and now >= next_progress:
                await on_wait(now - started)
                next_progress = now + self.timings.progress_interval_s
            if await self._receive():
                last_byte = loop.time()

    async def _receive(self) -> bool:
        data = await self.transport.read()
        if data:
            self._events.extend(self._scanner.feed(data))
        return bool(data)
