"""IPP/1.1 and 2.0 messages (RFC 8010) as bytes and back, with no I/O.

The attribute encoder and the message parser are pyipp's (``pyipp.serializer.construct_attribute`` and
``pyipp.parser.parse``). Its ready-made request builder is not used: it picks each attribute's value tag
from a fixed table and silently drops attributes the table lacks (``print-color-mode``,
``print-scaling``), and it encodes ``media`` as a name where printers list keywords. Here every
attribute carries its tag. The same functions build the simulator's responses (hardware-mocks).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyipp.enums import IppJobState, IppOperation, IppPrinterState, IppStatus, IppTag
from pyipp.parser import parse
from pyipp.serializer import construct_attribute

__all__ = [
    "Attribute",
    "IppJobState",
    "IppOperation",
    "IppPrinterState",
    "IppStatus",
    "IppTag",
    "Message",
    "ProtocolError",
    "decode",
    "encode",
    "request",
    "response",
    "values",
]

VERSION = (2, 0)
CHARSET = "utf-8"
LANGUAGE = "en"
USER = "mews-bridge"
"""``requesting-user-name``: CUPS lets only the job's owner (or an admin) cancel it."""

Attribute = tuple[str, IppTag, Any]
"""(name, value tag, value or list of values for a 1setOf)."""

_request_ids = itertools.count(1)


class ProtocolError(Exception):
    """The bytes are not an IPP message."""


@dataclass
class Message:
    """A decoded request or response. ``code`` is the operation of a request, the status of a response."""

    version: tuple[int, int]
    code: int
    request_id: int
    operation: dict[str, Any] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    printers: list[dict[str, Any]] = field(default_factory=list)
    unsupported: list[dict[str, Any]] = field(default_factory=list)
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return 0 <= self.code < 0x0100

    @property
    def status_message(self) -> str:
        message = self.operation.get("status-message")
        return message if isinstance(message, str) else ""


def values(attributes: dict[str, Any], name: str) -> list[Any]:
    """An attribute's values as a list: the parser gives one value bare and a 1setOf as a list."""
    value = attributes.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def encode(
    code: int,
    groups: Sequence[tuple[IppTag, Iterable[Attribute]]],
    *,
    request_id: int | None = None,
    data: bytes = b"",
    version: tuple[int, int] = VERSION,
) -> bytes:
    """One message: the header, each attribute group in order, the end tag, then ``data``."""
    if request_id is None:
        request_id = next(_request_ids)
    out = bytearray(struct.pack(">bbhi", version[0], version[1], code, request_id))
    for group, attributes in groups:
        out.append(group)
        for name, tag, value in attributes:
            out += _range(name, value) if tag == IppTag.RANGE else construct_attribute(name, value, tag)
    out.append(IppTag.END)
    out += data
    return bytes(out)


def _range(name: str, value: tuple[int, int]) -> bytes:
    """A rangeOfInteger (pyipp's encoder has none): lower and upper bound, 4 bytes each."""
    encoded = name.encode()
    return struct.pack(">bh", IppTag.RANGE, len(encoded)) + encoded + struct.pack(">hii", 8, *value)


def request(
    operation: IppOperation,
    printer_uri: str,
    attributes: Iterable[Attribute] = (),
    *,
    job_attributes: Iterable[Attribute] = (),
    data: bytes = b"",
) -> bytes:
    """A client request: charset, language, target and user first, as RFC 8011 orders them."""
    head: list[Attribute] = [
        ("attributes-charset", IppTag.CHARSET, CHARSET),
        ("attributes-natural-language", IppTag.LANGUAGE, LANGUAGE),
        ("printer-uri", IppTag.URI, printer_uri),
        ("requesting-user-name", IppTag.NAME, USER),
    ]
    groups: list[tuple[IppTag, Iterable[Attribute]]] = [(IppTag.OPERATION, [*head, *attributes])]
    job = list(job_attributes)
    if job:
        groups.append((IppTag.JOB, job))
    return encode(operation, groups, data=data)


def response(
    status: int,
    request_id: int,
    *,
    message: str = "",
    groups: Sequence[tuple[IppTag, Iterable[Attribute]]] = (),
    version: tuple[int, int] = VERSION,
) -> bytes:
    """A server response (the simulator's side)."""
    head: list[Attribute] = [
        ("attributes-charset", IppTag.CHARSET, CHARSET),
        ("attributes-natural-language", IppTag.LANGUAGE, LANGUAGE),
    ]
    if message:
        head.append(("status-message", IppTag.TEXT, message))
    return encode(status, [(IppTag.OPERATION, head), *groups], request_id=request_id, version=version)


def decode(raw: bytes, *, with_data: bool = False) -> Message:
    """Parse a message; ``with_data`` keeps what follows the attributes (a request's document)."""
    try:
        parsed = parse(raw, contains_data=with_data)
    except Exception as exc:  # the parser fails with struct, index, unicode and enum errors alike
        raise ProtocolError(f"not an IPP message ({type(exc).__name__})") from None
    return Message(
        version=tuple(parsed["version"]),
        code=parsed["status-code"],
        request_id=parsed["request-id"],
        operation=parsed["operation-attributes"] or {},
        jobs=[group for group in parsed["jobs"] if group],
        printers=[group for group in parsed["printers"] if group],
        unsupported=[group for group in parsed["unsupported-attributes"] if group],
        data=parsed["data"],
    )
