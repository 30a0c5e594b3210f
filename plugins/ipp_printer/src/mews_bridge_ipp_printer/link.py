"""IPP over HTTP (RFC 8010 section 4): one POST per operation, TLS always verified.

``ipp://`` is HTTP and ``ipps://`` is HTTPS, both on port 631 unless the URI says otherwise. A printer's
self-signed certificate is accepted only when its SHA-256 fingerprint matches the one pinned in the
settings; nothing here turns verification off.

Errors say whether the printer can have acted on the request: :class:`Unreachable` means nothing was
delivered; :class:`NoAnswer` means the request went out and its outcome is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .codec import Attribute, IppOperation, Message, ProtocolError, decode, request

log = logging.getLogger(__name__)
DEFAULT_PORT = 631
UPLOAD_BYTES_PER_S = 250_000
"""Slowest upload allowed for before a request counts as timed out (2 Mbit/s)."""


class LinkError(Exception):
    """The request did not get an IPP answer; the message is plain words for Notes."""


class Unreachable(LinkError):
    """No connection (refused, no route, name not found, certificate refused): nothing was sent."""


class NoAnswer(LinkError):
    """The request may have reached the printer, but no answer came back (timeout, dropped, 5xx)."""


class Refused(LinkError):
    """The server answered with an HTTP error that settles the request (401, 403, 404, 426)."""


class StatusError(LinkError):
    """The printer answered with an IPP error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message or f"IPP status 0x{status:04x}")
        self.status = status


def http_url(uri: str) -> str:
    """The HTTP URL an ``ipp://`` or ``ipps://`` URI is reached at."""
    parts = urlsplit(uri)
    scheme = {"ipp": "http", "ipps": "https"}[parts.scheme]
    netloc = parts.netloc if parts.port else f"{parts.netloc}:{DEFAULT_PORT}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


async def certificate_fingerprint(uri: str, timeout_s: float) -> str:
    """The SHA-256 fingerprint of the certificate an ``ipps://`` printer presents, for an installer to
    compare with the printer's own status page before pinning it. Only the handshake is done: nothing
    is sent over a connection whose certificate was not verified."""
    parts = urlsplit(uri)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # to read the certificate, not to trust it
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname, parts.port or DEFAULT_PORT, ssl=context), timeout_s
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    return ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())


class IppLink:
    """Operations on one printer URI over one HTTP connection pool; close it with :meth:`close`."""

    def __init__(self, uri: str, timeout_s: float, *, fingerprint: bytes | None = None) -> None:
        self.uri = uri
        self.url = http_url(uri)
        self.timeout_s = timeout_s
        self._tls: Any = True if fingerprint is None else aiohttp.Fingerprint(fingerprint)
        self._session: aiohttp.ClientSession | None = None

    async def call(
        self,
        operation: IppOperation,
        attributes: list[Attribute] | None = None,
        *,
        job_attributes: list[Attribute] | None = None,
        data: bytes = b"",
        check: bool = True,
    ) -> Message:
        """Send one operation and return the printer's answer; with ``check``, an error status raises."""
        body = request(operation, self.uri, attributes or [], job_attributes=job_attributes or [], data=data)
        raw = await self._post(body)
        try:
            answer = decode(raw)
        except ProtocolError as exc:
            raise NoAnswer(f"the answer was not IPP ({exc})") from None
        if check and not answer.ok:
            raise StatusError(answer.code, answer.status_message)
        return answer

    async def _post(self, body: bytes) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Content-Type": "application/ipp", "Accept": "application/ipp"}
            )
        timeout = aiohttp.ClientTimeout(total=self.timeout_s + len(body) / UPLOAD_BYTES_PER_S)
        try:
            async with self._session.post(
                self.url, data=body, ssl=self._tls, timeout=timeout, allow_redirects=False
            ) as reply:
                if reply.status in (408,) or reply.status >= 500:
                    raise NoAnswer(f"the printer answered HTTP {reply.status}")
                if reply.status != 200:
                    raise Refused(_http_refusal(reply.status))
                return await reply.read()
        except aiohttp.ServerFingerprintMismatch:
            raise Unreachable("its certificate does not match the pinned fingerprint") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            raise Unreachable(f"its certificate is not trusted ({_certificate_reason(exc)})") from None
        except aiohttp.ClientConnectorError as exc:
            raise Unreachable(_connect_reason(exc)) from None
        except TimeoutError:
            raise NoAnswer(f"no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            log.info("An IPP request broke: %r", exc)
            raise NoAnswer("the connection broke before the printer answered") from None

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _http_refusal(status: int) -> str:
    return {
        401: "it asks for a user name and password (HTTP 401), which the bridge does not send",
        403: "it refuses the bridge (HTTP 403)",
        404: "there is no printer at that address (HTTP 404): check the URI's path",
        426: "it wants an encrypted connection (HTTP 426): use an ipps:// URI",
    }.get(status, f"it answered HTTP {status}")


def _connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    error = exc.os_error
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ssl.SSLError):
        return f"the encrypted connection failed ({error.reason or 'TLS error'})"
    strerror = getattr(error, "strerror", None)
    return (strerror or type(error).__name__).lower()


def _certificate_reason(exc: aiohttp.ClientConnectorCertificateError) -> str:
    error = exc.certificate_error
    text = getattr(error, "verify_message", None) or getattr(error, "reason", None) or str(error)
    return str(text).lower()
