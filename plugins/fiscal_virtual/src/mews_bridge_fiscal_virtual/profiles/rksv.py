"""Austria, Registrierkassensicherheitsverordnung (RKSV), suite ``R1``.

The receipt data string (twelve fields after a leading ``_``)::

    _R1-<ZDA>_<Kassen-ID>_<Belegnummer>_<YYYY-MM-DDThh:mm:ss>_<Normal>_<Erm1>_<Erm2>_<Null>_<Besonders>
      _<encrypted turnover | U1RP | VFJB>_<certificate serial or key id>_<chain value>

Amounts are gross per bucket with a decimal comma and two decimals, never grouped. The turnover
counter (cents, standard and storno receipts) is encrypted with AES-256-CTR under the register's
key, ``IV = SHA-256(Kassen-ID + Belegnummer)[0:16]``, as an 8-byte big-endian two's-complement
integer. Receipts are signed as compact JWS ES256 and chained through
``base64(SHA-256(previous JWS)[0:8])``; the start receipt chains to the Kassen-ID.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from .base import Profile, ReceiptData, chain_value

ALGORITHM = "R1"
BUCKETS = ("Normal", "Erm1", "Erm2", "Null", "Besonders")
"""Fields 5-9: 20 %, 10 %, 13 %, 0 %, and 19 % (from 2026-07-01 also 4.9 %)."""
STORNO_FIELD = "U1RP"  # base64("STO")
TRAINING_FIELD = "VFJB"  # base64("TRA")
COUNTER_BYTES = 8
_RECEIPT_TYPES = {
    "START": "start",
    "SALE": "standard",
    "REFUND": "standard",
    "STORNO": "storno",
    "TRAINING": "training",
    "NULL": "null",
    "MONTH": "null",
    "YEAR": "null",
}


def format_amount(cents: int) -> str:
    """``1750`` → ``17,50``; matches ``^-?([1-9]\\d+|\\d),\\d\\d$`` (no locale, no grouping)."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole},{fraction:02d}"


def turnover_iv(cashbox_id: str, receipt_number: str) -> bytes:
    return hashlib.sha256((cashbox_id + receipt_number).encode()).digest()[:16]


def _ctr(aes_key: bytes, cashbox_id: str, receipt_number: str, data: bytes) -> bytes:
    # cryptography is imported at first use, as in ..keys (not with the plugin at start).
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(aes_key), modes.CTR(turnover_iv(cashbox_id, receipt_number))).encryptor()
    return cipher.update(data) + cipher.finalize()


def encrypt_turnover(
    cents: int, aes_key: bytes, cashbox_id: str, receipt_number: str, length: int = COUNTER_BYTES
) -> str:
    """Field 10 of a standard, start or null receipt: base64 of the N-byte encrypted counter."""
    plain = cents.to_bytes(length, "big", signed=True)
    return base64.b64encode(_ctr(aes_key, cashbox_id, receipt_number, plain)).decode()


def decrypt_turnover(field: str, aes_key: bytes, cashbox_id: str, receipt_number: str) -> int:
    return int.from_bytes(
        _ctr(aes_key, cashbox_id, receipt_number, base64.b64decode(field)), "big", signed=True
    )


def aes_key_check_value(aes_key: bytes) -> str:
    """The *Prüfwert* FinanzOnline asks for: ``base64(SHA-256(base64 key)[0:3])`` without ``=``."""
    key_b64 = base64.b64encode(aes_key).decode()
    return base64.b64encode(hashlib.sha256(key_b64.encode()).digest()[:3]).decode().rstrip("=")


def receipt_data_string(
    *,
    zda: str,
    cashbox_id: str,
    receipt_number: str,
    moment: datetime,
    amounts: Sequence[int],
    counter_field: str,
    key_id: str,
    chain: str,
) -> str:
    """The twelve fields; ``amounts`` are the five buckets in cents, ``moment`` is Austrian local time."""
    fields = [
        f"{ALGORITHM}-{zda}",
        cashbox_id,
        receipt_number,
        moment.strftime("%Y-%m-%dT%H:%M:%S"),
        *(format_amount(a) for a in amounts),
        counter_field,
        key_id,
        chain,
    ]
    return "_" + "_".join(fields)


class RksvProfile(Profile):
    name = "rksv"
    closings: ClassVar[tuple[str, ...]] = ("MONTH", "YEAR")  # Monatsbeleg, Jahresbeleg
    decimal_separator = ","
    buckets = BUCKETS
    bucket_labels: ClassVar[dict[str, str]] = {
        "Normal": "20%", "Erm1": "10%", "Erm2": "13%", "Null": "0%", "Besonders": "19/4.9%"
    }  # fmt: skip
    has_qr_code = True

    def __init__(self, register_id: str, key_label: str, aes_key: bytes | None, zda: str = "AT0") -> None:
        super().__init__(register_id, key_label, aes_key)
        self.zda = zda

    @staticmethod
    def normalize_bucket(name: str) -> str:
        for bucket in BUCKETS:
            if bucket.casefold() == name.casefold():
                return bucket
        raise ValueError(f"{name!r} is not an RKSV tax bucket ({', '.join(BUCKETS)})")

    def kind_label(self, kind: str) -> str | None:
        return {
            "STORNO": "Stornobuchung",
            "TRAINING": "Trainingsbuchung",
            "START": "Startbeleg",
            "MONTH": "Monatsbeleg",
            "YEAR": "Jahresbeleg",
            "NULL": "Nullbeleg",
        }.get(kind)

    def data_string(self, receipt: ReceiptData, previous_code: str | None) -> str:
        receipt_type = _RECEIPT_TYPES[receipt.kind]
        number = str(receipt.number)
        if receipt_type == "storno":
            counter = STORNO_FIELD
        elif receipt_type == "training":
            counter = TRAINING_FIELD
        else:
            if self._aes_key is None:
                raise ValueError("the turnover key is needed to write or check RKSV receipts")
            counter = encrypt_turnover(receipt.turnover, self._aes_key, self.register_id, number)
        amounts = tuple(receipt.totals[b].gross if b in receipt.totals else 0 for b in BUCKETS)
        return receipt_data_string(
            zda=self.zda,
            cashbox_id=self.register_id,
            receipt_number=number,
            moment=receipt.ts_local,
            amounts=amounts,
            counter_field=counter,
            key_id=self.key_label,
            chain=chain_value(previous_code, self.register_id),
        )
