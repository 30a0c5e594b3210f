"""ESC/POS real-time status (``DLE EOT n``): request bytes and reply bytes, both ways, with no I/O.

The driver asks with :func:`request` and reads replies with :func:`decode`; the printer simulator in
``mews-bridge-hardware-mocks`` answers with :func:`encode`. Every reply is one byte shaped
``0xx1xx10`` (bits 1 and 4 set, bits 0 and 7 clear) whatever ``n`` is, which tells a status reply
apart from XON/XOFF and Automatic Status Back bytes that can sit in the same input stream.

Bits used (Epson ESC/POS; the values python-escpos's ``RT_MASK_*`` constants test):

* n=1 printer: bit 3 offline.
* n=2 offline cause: bit 2 cover open, bit 5 printing stopped by paper end, bit 6 error.
* n=3 error cause: bit 3 autocutter, bit 5 unrecoverable, bit 6 auto-recoverable (head too hot).
* n=4 roll paper sensor: bits 2+3 near end, bits 5+6 paper end.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

DLE_EOT = b"\x10\x04"
REPLY_MASK = 0x93
REPLY_FIXED = 0x12


class StatusKind(IntEnum):
    """The ``n`` of ``DLE EOT n``."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    ROLL_PAPER = 4


# One round trip before every page answers everything the front desk needs; the error cause (n=3)
# is asked only when n=2 reports an error, because some clones do not answer it.
ROUTINE_KINDS: tuple[StatusKind, ...] = (StatusKind.PRINTER, StatusKind.OFFLINE_CAUSE, StatusKind.ROLL_PAPER)

_OFFLINE = 0x08
_COVER_OPEN = 0x04
_STOPPED_BY_PAPER_END = 0x20
_ERROR = 0x40
_AUTOCUTTER = 0x08
_UNRECOVERABLE = 0x20
_AUTO_RECOVERABLE = 0x40
_NEAR_END = 0x0C
_PAPER_END = 0x60


def request(*kinds: StatusKind) -> bytes:
    """The bytes asking for the given statuses; the printer answers one byte each, in order."""
    return b"".join(DLE_EOT + bytes([kind]) for kind in kinds)


def is_reply(byte: int) -> bool:
    """True for a byte shaped like a ``DLE EOT`` reply."""
    return byte & REPLY_MASK == REPLY_FIXED


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer reported. Fields a printer did not report stay False."""

    offline: bool = False
    cover_open: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    error: bool = False
    autocutter_error: bool = False
    unrecoverable_error: bool = False
    head_overheated: bool = False

    @property
    def fault(self) -> str | None:
        """What stops printing: ``paper_out``, ``cover_open``, ``cutter_error``, ``hardware_error``,
        ``overheated`` or ``offline``; None when the printer can print."""
        if self.paper_out:
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if self.autocutter_error:
            return "cutter_error"
        if self.unrecoverable_error:
            return "hardware_error"
        if self.head_overheated:
            return "overheated"
        if self.offline or self.error:
            return "offline"
        return None

    @property
    def summary(self) -> str:
        """A short label for logs and diagnostics."""
        return self.fault or ("paper_near_end" if self.paper_near_end else "ready")


def decode(replies: dict[StatusKind, int]) -> PrinterStatus:
    """Turn the reply byte of each asked ``n`` into a :class:`PrinterStatus`."""
    printer = replies.get(StatusKind.PRINTER, REPLY_FIXED)
    cause = replies.get(StatusKind.OFFLINE_CAUSE, REPLY_FIXED)
    error = replies.get(StatusKind.ERROR_CAUSE, REPLY_FIXED)
    paper = replies.get(StatusKind.ROLL_PAPER, REPLY_FIXED)
    return PrinterStatus(
        offline=bool(printer & _OFFLINE),
        cover_open=bool(cause & _COVER_OPEN),
        paper_out=bool(cause & _STOPPED_BY_PAPER_END) or paper & _PAPER_END == _PAPER_END,
        paper_near_end=paper & _NEAR_END == _NEAR_END,
        error=bool(cause & _ERROR),
        autocutter_error=bool(error & _AUTOCUTTER),
        unrecoverable_error=bool(error & _UNRECOVERABLE),
        head_overheated=bool(error & _AUTO_RECOVERABLE),
    )


def encode(status: PrinterStatus) -> dict[StatusKind, int]:
    """The reply byte a printer in ``status`` sends for each ``n`` (the simulator's side)."""
    offline = status.offline or status.fault is not None
    error = status.error or status.autocutter_error or status.unrecoverable_error or status.head_overheated
    return {
        StatusKind.PRINTER: REPLY_FIXED | (_OFFLINE if offline else 0),
        StatusKind.OFFLINE_CAUSE: REPLY_FIXED
        | (_COVER_OPEN if status.cover_open else 0)
        | (_STOPPED_BY_PAPER_END if status.paper_out else 0)
        | (_ERROR if error else 0),
        StatusKind.ERROR_CAUSE: REPLY_FIXED
        | (_AUTOCUTTER if status.autocutter_error else 0)
        | (_UNRECOVERABLE if status.unrecoverable_error else 0)
        | (_AUTO_RECOVERABLE if status.head_overheated else 0),
        # An empty roll also trips the near-end sensor on real printers.
        StatusKind.ROLL_PAPER: REPLY_FIXED
        | (_NEAR_END if status.paper_near_end or status.paper_out else 0)
        | (_PAPER_END if status.paper_out else 0),
    }
