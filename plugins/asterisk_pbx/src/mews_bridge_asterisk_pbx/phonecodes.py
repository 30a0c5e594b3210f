"""Codes dialled on a room phone that the dialplan hands to the bridge, and the bridge's answer.

The sample dialplan (``docs/extensions.conf.sample``) sends each such code as an AMI event::

    UserEvent(HotelCode,Room: ${CALLERID(num)},Code: ${EXTEN},Request: ${UNIQUEID})

and waits a few seconds for the AstDB key ``<family>/reply/<Request>``: ``ok …`` plays a confirmation,
anything else (or nothing) an error prompt. ``mews-bridge pbx wakeup`` sends the same event through
AMI, so staff and guests take one path.

=================== ======================================================
``*51*ARTICLE*QTY`` minibar and extras, e.g. ``*51*12*2`` (``*51*12``: one)
``*52*PIN*STATUS``  room status, e.g. ``*52*4711*1`` (housekeeping staff)
``*55*HHMM``        wake-up call at HH:MM, property time
``*56``             cancel the wake-up call
=================== ======================================================

Pure: parsing and formatting only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

from .codec import Message

USER_EVENT = "HotelCode"
REPLY_KEY = "reply"
"""AstDB ``<family>/reply/<Request>`` holds the answer to one code."""
_REQUEST = re.compile(r"[A-Za-z0-9._-]{1,64}")
_ARTICLE = re.compile(r"\*51\*(?P<article>[0-9]{1,6})(?:\*(?P<count>[0-9]{1,3}))?")
_ROOM_STATUS = re.compile(r"\*52\*(?P<pin>[0-9]{1,12})\*(?P<status>[0-9]{1,2})")
_WAKEUP = re.compile(r"\*55\*(?P<hh>[0-9]{2})(?P<mm>[0-9]{2})")
_CANCEL = "*56"


class CodeError(ValueError):
    """A code the bridge does not know, or one with wrong digits; the text is safe to log."""


@dataclass(frozen=True, slots=True)
class ArticleCode:
    article: str
    count: int


@dataclass(frozen=True, slots=True)
class RoomStatusCode:
    pin: str
    status: str

    def __repr__(self) -> str:  # the PIN stays out of logs
        return f"RoomStatusCode(status={self.status!r})"


@dataclass(frozen=True, slots=True)
class WakeupCode:
    at: time


@dataclass(frozen=True, slots=True)
class WakeupCancel:
    pass


PhoneCode = ArticleCode | RoomStatusCode | WakeupCode | WakeupCancel


def parse_code(code: str) -> PhoneCode:
    """``*51*12*2`` → :class:`ArticleCode`; ``*52*4711*1`` → :class:`RoomStatusCode`;
    ``*55*0700`` → :class:`WakeupCode`; ``*56`` → cancel."""
    code = code.strip()
    if code.startswith("*51"):
        article = _ARTICLE.fullmatch(code)
        if article is None:
            raise CodeError("an article code is *51*ARTICLE or *51*ARTICLE*QUANTITY")
        count = int(article["count"] or 1)
        if count < 1:
            raise CodeError("the quantity must be at least 1")
        return ArticleCode(article["article"], count)
    if code.startswith("*52"):
        status = _ROOM_STATUS.fullmatch(code)
        if status is None:
            raise CodeError("a room status code is *52*PIN*STATUS")
        return RoomStatusCode(status["pin"], status["status"])
    if code.startswith("*55"):
        wakeup = _WAKEUP.fullmatch(code)
        if wakeup is None or int(wakeup["hh"]) > 23 or int(wakeup["mm"]) > 59:
            raise CodeError("a wake-up code is *55*HHMM, e.g. *55*0700")
        return WakeupCode(time(int(wakeup["hh"]), int(wakeup["mm"])))
    if code == _CANCEL:
        return WakeupCancel()
    raise CodeError(f"unknown code {code[:3]!r}")


@dataclass(frozen=True, slots=True)
class PhoneRequest:
    """One code as it arrived: from which extension, under which request id."""

    extension: str
    code: str
    request: str
    by_staff: bool = False
    """Sent by ``mews-bridge pbx`` (header ``Source: staff``) rather than dialled on the phone."""

    @classmethod
    def from_event(cls, event: Message) -> PhoneRequest | None:
        """The request in a ``UserEvent: HotelCode`` event; None for other user events or a malformed one."""
        if (event.get("UserEvent") or "") != USER_EVENT:
            return None
        extension = (event.get("Room") or "").strip()
        request = (event.get("Request") or "").strip()
        if not extension or not _REQUEST.fullmatch(request):
            return None
        return cls(extension, event.get("Code") or "", request, (event.get("Source") or "") == "staff")


def reply(ok: bool, text: str) -> str:
    """The AstDB answer: ``ok wake-up call at 07:00`` or ``error unknown PIN``."""
    return f"{'ok' if ok else 'error'} {text}".strip()


def is_request_id(text: str) -> bool:
    return _REQUEST.fullmatch(text) is not None
