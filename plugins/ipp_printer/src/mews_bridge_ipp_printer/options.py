"""The ``[devices.options]`` table of an ``ipp_printer`` device."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    uri: str = Field(min_length=1, examples=["ipp://printer.local/ipp/print"])
    """The printer's IPP address: ipp://HOST/ipp/print (IPP Everywhere, AirPrint), ipps://… for an
    encrypted connection, or a CUPS queue such as ipp://localhost:631/printers/Reception."""
    media: str | None = Field(None, examples=["iso_a4_210x297mm"])
    """Paper size as the printer names it (PWG name: iso_a4_210x297mm, na_letter_8.5x11in). By default
    the printer's own default."""
    sides: Literal["one-sided", "two-sided-long-edge", "two-sided-short-edge"] = "one-sided"
    """One-sided, or both sides of the sheet (long-edge binding for portrait documents)."""
    color_mode: Literal["auto", "monochrome", "color"] = "auto"
    """Colour or black and white; "auto" leaves it to the printer."""
    fit_to_page: bool = True
    """Scale each page to fit the paper (landscape pages are always turned to fit)."""
    timeout_s: float = Field(30.0, gt=0, le=300)
    """How long the printer may take to answer one request."""
    job_timeout_s: float = Field(300.0, gt=0, le=540)
    """How long a job may take to print before it is cancelled and the command ends in Error."""
    stalled_after_s: float = Field(20.0, ge=0, le=300)
    """How long a job may wait on paper, a jam or an open door before it is cancelled and the command
    ends in Error (the front desk then fixes the printer and prints again)."""
    poll_interval_s: float = Field(1.0, ge=0.05, le=30)
    """How often the job's progress is asked for while it prints."""
    tls_fingerprint: str | None = Field(None, examples=["AB:CD:…"])
    """SHA-256 fingerprint of the printer's own certificate, for an ipps:// printer whose certificate is
    self-signed (`mews-bridge ipp check` shows it). Certificates are always verified: without this, the
    certificate must be signed by an authority the system trusts."""
    max_pages: int = Field(50, ge=1, le=1000)
    """Longest document accepted, in pages."""
    max_document_mb: float = Field(20.0, gt=0, le=200)
    """Largest document accepted, in megabytes."""

    @field_validator("uri")
    @classmethod
    def _ipp_uri(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("ipp", "ipps") or not parts.hostname:
            raise ValueError(
                "must be an ipp:// or ipps:// address with a host, e.g. ipp://printer.local/ipp/print"
            )
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError("the port is not a number") from None
        return value

    @field_validator("tls_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None:
            parse_fingerprint(value)
        return value

    @model_validator(mode="after")
    def _pin_needs_tls(self) -> Options:
        if self.tls_fingerprint and not self.uri.startswith("ipps://"):
            raise ValueError("tls_fingerprint is only used with an ipps:// uri")
        return self

    @property
    def fingerprint(self) -> bytes | None:
        return parse_fingerprint(self.tls_fingerprint) if self.tls_fingerprint else None


def parse_fingerprint(text: str) -> bytes:
    """``AB:CD:…`` or plain hex, 32 bytes of SHA-256; ValueError otherwise."""
    digest = bytes.fromhex(text.replace(":", "").replace(" ", ""))
    if len(digest) != 32:
        raise ValueError("a SHA-256 fingerprint has 32 bytes (64 hex digits)")
    return digest
