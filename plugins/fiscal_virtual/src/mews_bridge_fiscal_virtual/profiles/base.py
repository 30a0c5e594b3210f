"""What every country profile shares: a receipt data string signed as a compact JWS (ES256), chained
to the previous receipt's JWS, and printed as a QR string with a short verification code."""

from __future__ import annotations

import base64
import binascii
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from ..keys import KeyMaterial, verify_signature
from ..money import BucketTotals

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

JWS_HEADER = "eyJhbGciOiJFUzI1NiJ9"
"""``base64url('{"alg":"ES256"}')``: exactly this header, never a ``typ`` (RKSV verifiers refuse it)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    if "=" in text:
        raise ValueError("base64url here has no padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


def sign_jws(payload: str, keys: KeyMaterial) -> str:
    """Compact JWS: header.payload.signature, the signature raw ``r ‖ s`` in base64url."""
    signing_input = f"{JWS_HEADER}.{b64url(payload.encode())}"
    return f"{signing_input}.{b64url(keys.sign(signing_input.encode()))}"


def open_jws(jws: str, public_key: ec.EllipticCurvePublicKey) -> str:
    """The payload of a compact JWS after checking its header and signature; ``ValueError`` if not valid."""
    parts = jws.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header, payload, signature = parts
    if header != JWS_HEADER:
        raise ValueError('the JWS header is not exactly {"alg":"ES256"}')
    if not verify_signature(public_key, b64url_decode(signature), f"{header}.{payload}".encode()):
        raise ValueError("the JWS signature is not valid")
    try:
        return b64url_decode(payload).decode()
    except UnicodeDecodeError:
        raise ValueError("the JWS payload is not UTF-8") from None


def qr_string(jws: str) -> str:
    """Receipt data string, ``_``, then the signature in standard base64 (``_`` is the separator)."""
    _, payload, signature = jws.split(".")
    return f"{b64url_decode(payload).decode()}_{base64.b64encode(b64url_decode(signature)).decode()}"


def short_code(jws: str) -> str:
    """``base64url(SHA-256(QR string)[0:8])``: the RKSV URL hash, our short verification code."""
    return b64url(hashlib.sha256(qr_string(jws).encode()).digest()[:8])


def chain_value(previous_jws: str | None, register_id: str) -> str:
    """``base64(SHA-256(previous JWS)[0:8])``, or of the register id for the first receipt."""
    seed = previous_jws if previous_jws is not None else register_id
    return base64.b64encode(hashlib.sha256(seed.encode()).digest()[:8]).decode()


@dataclass(frozen=True)
class ReceiptData:
    """The fields of a journal entry a profile signs."""

    register_id: str
    number: int
    kind: str
    ts_local: datetime
    """Aware, in the property's time zone."""
    currency: str
    totals: Mapping[str, BucketTotals]
    turnover: int
    """The turnover counter after this receipt, in minor units."""


class Profile(ABC):
    """A country format: how receipts are written, signed and checked."""

    name: ClassVar[str]
    closings: ClassVar[tuple[str, ...]]
    """Closings this profile keeps besides the daily Z: ``MONTH``, ``YEAR``."""
    decimal_separator: ClassVar[str] = "."
    buckets: ClassVar[tuple[str, ...]] = ()
    """The profile's fixed tax buckets in order (their VAT letters on paper are A, B, C…)."""
    bucket_labels: ClassVar[dict[str, str]] = {}
    """How the VAT table on paper names a bucket (its rate)."""
    has_qr_code: ClassVar[bool] = False
    """Whether receipts carry the signed data as a QR code (else the short verification code only)."""

    def __init__(self, register_id: str, key_label: str, aes_key: bytes | None) -> None:
        self.register_id = register_id
        self.key_label = key_label
        self._aes_key = aes_key

    @staticmethod
    @abstractmethod
    def normalize_bucket(name: str) -> str:
        """The canonical spelling of a tax bucket; ``ValueError`` if the profile has no such bucket."""

    @abstractmethod
    def data_string(self, receipt: ReceiptData, previous_code: str | None) -> str:
        """The signed payload of a receipt."""

    def kind_label(self, kind: str) -> str | None:
        """Words the profile requires on a printed receipt of this kind, if any."""
        return None

    def sign(self, receipt: ReceiptData, previous_code: str | None, keys: KeyMaterial) -> str:
        return sign_jws(self.data_string(receipt, previous_code), keys)

    def check(
        self,
        receipt: ReceiptData,
        code: str,
        previous_code: str | None,
        public_key: ec.EllipticCurvePublicKey,
    ) -> None:
        """Raise ``ValueError`` unless ``code`` is a valid signature of exactly this receipt in this chain."""
        signed = open_jws(code, public_key)
        expected = self.data_string(receipt, previous_code)
        if signed != expected:
            raise ValueError(f"the signed receipt data {_first_difference(signed, expected)}")


def _first_difference(signed: str, expected: str) -> str:
    got, want = signed.split("_"), expected.split("_")
    for index, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"has {a!r} in field {index} where the journal gives {b!r}"
    return f"has {len(got) - 1} fields where the journal gives {len(want) - 1}"
