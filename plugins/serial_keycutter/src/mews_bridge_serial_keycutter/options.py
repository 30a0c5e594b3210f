"""The ``options`` table of a ``serial_keycutter`` device."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mews_bridge import TimeZoneName

from .codec import FieldError, encode_field
from .dialects import get_dialect
from .link import ACK_TIMEOUT_S, ATTEMPTS


class KeycutterOptions(BaseModel):
    # The docstrings become the descriptions `mews-bridge config example` prints.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    port: str = Field(min_length=1, examples=["/dev/serial/by-id/usb-FTDI_FT232R_USB_UART-if00-port0"])
    """A pyserial URL: /dev/serial/by-id/..., socket://host:port, rfc2217://host:port, spy://..."""
    baudrate: int = Field(9600, gt=0)
    """Line speed (ignored for socket://)."""
    parity: Literal["N", "E", "O"] = "N"
    """N, E or O, with 8 data bits and 1 stop bit."""
    rtscts: bool = False
    """Hardware flow control."""
    dialect: str = Field(examples=["salto"])
    """salto or onity, or one a vendor plugin registered."""
    encoder: str = Field(min_length=1, examples=["Encoder1"])
    """The encoder's address in the lock system: its name (SALTO) or number (Onity)."""
    timezone: TimeZoneName | None = None
    """IANA name of the time zone the locks run on; default: the property's time zone in Mews."""
    card_timeout_s: float = Field(60.0, gt=0)
    """How long staff have to insert each card."""
    ack_timeout_s: float = Field(ACK_TIMEOUT_S, gt=0)
    """How long to wait for the encoder's ACK or NAK."""
    attempts: int = Field(ATTEMPTS, ge=1, le=10)
    """ENQs while the encoder is busy, and sends of a request it refuses."""
    enq_before_send: bool = True
    """Ask the encoder whether it is ready before each request (Onity needs it; SALTO accepts it)."""
    eject: Literal["E", "R", "T"] = "E"
    """After encoding: E ejects the card, R retains it, T pushes it out at the rear."""
    operator: str = Field("MewsBridge", max_length=24)
    """Recorded by the lock system as who encoded the card."""
    max_keys: int | None = Field(None, ge=1)
    """Most keys one command may ask for; default: the dialect's limit."""

    @field_validator("dialect")
    @classmethod
    def _known_dialect(cls, value: str) -> str:
        try:
            get_dialect(value)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return value

    @field_validator("encoder", "operator")
    @classmethod
    def _fits_in_a_field(cls, value: str) -> str:
        try:
            encode_field(value)
        except FieldError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _fits_dialect(self) -> Self:
        dialect = get_dialect(self.dialect)
        dialect.check_encoder(self.encoder)
        if self.max_keys is not None and self.max_keys > dialect.max_keys:
            raise ValueError(
                f"max_keys: {dialect.title} encoders cut at most {dialect.max_keys} keys per request"
            )
        return self

    @property
    def key_limit(self) -> int:
        return self.max_keys or get_dialect(self.dialect).max_keys
