"""The "PMS Industry Standard" envelope shared by SALTO and Onity encoders. No I/O here.

A frame is ``STX SEP f0 SEP f1 … SEP fn SEP ETX LRC``: Latin-1 fields separated by ``0xB3``, and an
LRC that XORs every byte after STX up to and including ETX. Outside frames the line carries single
control bytes: ``ENQ`` (are you ready?), ``ACK`` and ``NAK``.

The same functions serve both ends of the line: the driver wraps requests and scans for replies, the
encoder simulator scans for requests and wraps replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STX = 0x02
ETX = 0x03
ENQ = 0x05
ACK = 0x06
NAK = 0x15
SEP = 0xB3
CONTROL_BYTES = frozenset({ENQ, ACK, NAK})

MAX_FRAME_BYTES = 1024
"""Longest frame accepted; a longer run without ETX is line noise, not a frame."""


class FrameError(ValueError):
    """Bytes that are not a well-formed frame (bad LRC, missing separators)."""


class FieldError(ValueError):
    """Text that cannot travel in a field (not Latin-1, a control byte, the separator)."""


def lrc(data: bytes) -> int:
    """XOR of all bytes: the frame check over everything after STX up to and including ETX."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def encode_field(text: str) -> bytes:
    """One field's bytes; raise :class:`FieldError` for text the protocol cannot carry."""
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise FieldError(f"{text!r} has characters outside Latin-1") from exc
    if any(byte < 0x20 or byte in (0x7F, SEP) for byte in data):
        raise FieldError(f"{text!r} contains a control character or the field separator")
    return data


def build_frame(fields: Sequence[str]) -> bytes:
    """``STX SEP f0 SEP … SEP fn SEP ETX LRC`` for the given fields."""
    sep = bytes([SEP])
    body = sep + sep.join(encode_field(field) for field in fields) + sep + bytes([ETX])
    return bytes([STX]) + body + bytes([lrc(body)])


def frame_intact(frame: bytes) -> bool:
    """True if ``frame`` runs from STX to ETX and its LRC matches."""
    return len(frame) >= 4 and frame[0] == STX and frame[-2] == ETX and lrc(frame[1:-1]) == frame[-1]


def parse_frame(frame: bytes) -> list[str]:
    """The fields of a complete frame; raise :class:`FrameError` if it is malformed or its LRC is wrong."""
    if not frame_intact(frame):
        raise FrameError(f"not a frame or LRC mismatch: {frame.hex(' ')}")
    payload = frame[1:-2]
    if payload[:1] != bytes([SEP]) or payload[-1:] != bytes([SEP]):
        raise FrameError(f"fields not enclosed in separators: {frame.hex(' ')}")
    return [part.decode("latin-1") for part in payload[1:-1].split(bytes([SEP]))]


@dataclass(frozen=True)
class Control:
    """A single ENQ, ACK or NAK byte seen outside a frame."""

    byte: int


@dataclass(frozen=True)
class Frame:
    """A complete frame, STX through LRC, as received (its LRC is not checked yet)."""

    raw: bytes


@dataclass(frozen=True)
class Noise:
    """Bytes outside any frame that mean nothing (line noise, a stray LRC)."""

    data: bytes


Event = Control | Frame | Noise


class FrameScanner:
    """Splits a byte stream into control bytes, frames and noise. Feed it whatever arrives."""

    def __init__(self) -> None:
        self._frame = bytearray()
        self._have_etx = False

    @property
    def in_frame(self) -> bool:
        """True between an STX and the frame's LRC (a reader applies the inter-byte timeout then)."""
        return bool(self._frame)

    def reset(self) -> None:
        """Forget a partial frame (after a timeout or before a new transaction)."""
        self._frame.clear()
        self._have_etx = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        noise = bytearray()
        for byte in data:
            if self._frame:
                self._frame.append(byte)
                if self._have_etx:
                    events.append(Frame(bytes(self._frame)))
                    self.reset()
                elif byte == ETX:
                    self._have_etx = True
                elif len(self._frame) > MAX_FRAME_BYTES:
                    noise += self._frame
                    self.reset()
                continue
            if byte == STX or byte in CONTROL_BYTES:
                if noise:
                    events.append(Noise(bytes(noise)))
                    noise.clear()
                if byte == STX:
                    self._frame.append(byte)
                else:
                    events.append(Control(byte))
            else:
                noise.append(byte)
        if noise:
            events.append(Noise(bytes(noise)))
        return events
