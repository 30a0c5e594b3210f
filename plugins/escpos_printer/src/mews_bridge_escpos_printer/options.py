"""The ``options`` table of an ``escpos_printer`` device, and the connection URL it names.

Example::

    [[devices]]
    name = "Reception printer"
    mews_device = "Reception receipt printer"
    driver = "escpos_printer"
    [devices.options]
    connection = "tcp://192.168.1.50:9100"
    profile = "TM-T20II"
    cut = "partial"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

DEFAULT_TCP_PORT = 9100
SERIAL_FLOW = ("none", "rtscts", "dsrdtr", "xonxoff")
_SERIAL_PARAMS = {"baudrate", "bytesize", "parity", "stopbits", "flow"}


@dataclass(frozen=True)
class Link:
    """A parsed ``connection`` URL."""

    scheme: Literal["tcp", "serial", "usb", "file"]
    host: str = ""
    port: int = DEFAULT_TCP_PORT
    path: str = ""
    vendor_id: int = 0
    product_id: int = 0
    serial: dict[str, str | int] = field(default_factory=dict)

    @property
    def can_read(self) -> bool:
        """Whether the printer can answer over this link (a device file is write-only)."""
        return self.scheme != "file"


def parse_connection(url: str) -> Link:
    """Parse ``tcp://host:9100``, ``serial:///dev/ttyUSB0?baudrate=19200``, ``usb://04b8:0202`` or
    ``file:///dev/usb/lp0``; raise ValueError saying what is wrong."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme == "tcp":
        if not parts.hostname:
            raise ValueError(f"{url!r} has no host; write tcp://HOST:9100")
        try:
            port = parts.port or DEFAULT_TCP_PORT
        except ValueError as exc:
            raise ValueError(f"{url!r} has an invalid port") from exc
        return Link("tcp", host=parts.hostname, port=port)
    if scheme == "serial":
        if not parts.path:
            raise ValueError(f"{url!r} has no device; write serial:///dev/ttyUSB0?baudrate=19200")
        return Link("serial", path=parts.path, serial=_serial_params(url, parts.query))
    if scheme == "usb":
        return _usb_link(url, parts.netloc)
    if scheme == "file":
        if not parts.path:
            raise ValueError(f"{url!r} has no path; write file:///dev/usb/lp0")
        return Link("file", path=parts.path)
    raise ValueError(
        f"{url!r}: unsupported scheme {parts.scheme!r}; use tcp://, serial://, usb:// or file://"
    )


def _serial_params(url: str, query: str) -> dict[str, str | int]:
    params = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(params) - _SERIAL_PARAMS
    if unknown:
        raise ValueError(f"{url!r}: unknown serial setting(s) {', '.join(sorted(unknown))}")
    result: dict[str, str | int] = {
        "baudrate": 9600,
        "bytesize": 8,
        "parity": "N",
        "stopbits": 1,
        "flow": "none",
    }
    for name in ("baudrate", "bytesize", "stopbits"):
        if name in params:
            try:
                result[name] = int(params[name])
            except ValueError as exc:
                raise ValueError(f"{url!r}: {name} must be a whole number") from exc
    if not 300 <= int(result["baudrate"]) <= 921600:
        raise ValueError(f"{url!r}: baudrate must be between 300 and 921600")
    if result["bytesize"] not in (7, 8) or result["stopbits"] not in (1, 2):
        raise ValueError(f"{url!r}: bytesize must be 7 or 8 and stopbits 1 or 2")
    result["parity"] = params.get("parity", "N").upper()[:1]
    if result["parity"] not in ("N", "E", "O"):
        raise ValueError(f"{url!r}: parity must be N, E or O")
    result["flow"] = params.get("flow", "none").lower()
    if result["flow"] not in SERIAL_FLOW:
        raise ValueError(f"{url!r}: flow must be one of {', '.join(SERIAL_FLOW)}")
    return result


def _usb_link(url: str, netloc: str) -> Link:
    vendor, _, product = netloc.partition(":")
    try:
        vendor_id, product_id = int(vendor, 16), int(product, 16)
    except ValueError:
        raise ValueError(
            f"{url!r}: write usb://VENDOR:PRODUCT in hex, as lsusb shows it (usb://04b8:0202)"
        ) from None
    if not (0 < vendor_id <= 0xFFFF and 0 <= product_id <= 0xFFFF):
        raise ValueError(f"{url!r}: USB ids are four hex digits each")
    return Link("usb", vendor_id=vendor_id, product_id=product_id)


class Options(BaseModel):
    """Settings of one ESC/POS printer."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    connection: str = Field(examples=["tcp://192.168.1.50:9100"])
    """tcp://HOST:9100, serial:///dev/ttyUSB0?baudrate=19200, usb://VID:PID or file:///dev/usb/lp0"""
    profile: str = "default"
    """A python-escpos printer profile (TM-T20II, TM-T88V, POS-5890...): its width and cutter."""
    paper_width_mm: Literal[58, 80] | None = None
    """Roll width, 58 or 80; the width in dots follows from it and the profile's resolution."""
    width_dots: int | None = Field(default=None, ge=64, le=1280, multiple_of=8)
    """Printable width in dots (576, 512, 384...), when profile and paper width get it wrong."""
    cut: Literal["full", "partial", "none"] = "full"
    """Cut after each copy: full, partial (leaves a hinge) or none (tear off)."""
    feed_lines: int = Field(default=4, ge=0, le=255)
    """Lines fed after each copy so its end clears the cutter (or the tear bar)."""
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    """Seconds to wait for the printer to connect, take data or answer a status request."""
    check_status: bool = True
    """Ask the printer for paper and cover status (DLE EOT) before and during each job."""
    status_poll_s: float = Field(default=60.0, ge=0, le=3600)
    """Between jobs, ask for that status this often (seconds; 0: never), so that the status page and
    /metrics show paper out before the next job fails."""
    image_mode: Literal["raster", "graphics", "column"] = "raster"
    """raster (GS v 0) for most printers; else graphics (GS ( L) or column (ESC *, impact printers)."""
    dither: Literal["diffusion", "threshold"] = "diffusion"
    """diffusion keeps text sharp and shades logos and photos; threshold is pure black and white."""
    trim_margins: bool = True
    """Trim white page margins so an A4 document fills the roll (and skip blank space)."""
    max_pages: int = Field(default=20, ge=1, le=500)
    """Documents with more pages are refused."""
    max_copies: int = Field(default=5, ge=1, le=100)
    """Commands asking for more copies are refused (Mews allows up to 100)."""
    max_document_mb: float = Field(default=10.0, gt=0, le=200)
    """Documents larger than this (decoded) are refused."""

    _link: Link = PrivateAttr()

    @field_validator("connection")
    @classmethod
    def _valid_connection(cls, value: str) -> str:
        parse_connection(value)
        return value.strip()

    @field_validator("profile")
    @classmethod
    def _profile_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name a python-escpos profile, or leave it out for 'default'")
        return value.strip()

    def model_post_init(self, context: object, /) -> None:
        self._link = parse_connection(self.connection)

    @property
    def link(self) -> Link:
        return self._link
