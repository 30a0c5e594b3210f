"""RKSV: the test vectors of docs/reference/fiscal.md, byte for byte, and the format rules around them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mews_bridge_fiscal_virtual.keys import KeyMaterial, load_public_key
from mews_bridge_fiscal_virtual.money import BucketTotals
from mews_bridge_fiscal_virtual.profiles.base import (
    JWS_HEADER,
    ReceiptData,
    b64url_decode,
    chain_value,
    open_jws,
    qr_string,
    short_code,
    sign_jws,
)
from mews_bridge_fiscal_virtual.profiles.rksv import (
    RksvProfile,
    aes_key_check_value,
    decrypt_turnover,
    encrypt_turnover,
    format_amount,
    receipt_data_string,
)

# docs/reference/fiscal.md, section 3.5: closed system R1-AT0, BMF scenario-1 AES key.
AES_KEY_B64 = "WQRtiiya3hYh/Uz44Bv3x8ETl1nrH6nCdErn69g5/lU="
AES_KEY = base64.b64decode(AES_KEY_B64)
CASHBOX = "CASHBOX-DEMO-1"
KEY_ID = "U:ATU12345678-K1"
AMOUNT_FORMAT = re.compile(r"^-?([1-9]\d+|\d),\d\d$")
VIENNA = ZoneInfo("Europe/Vienna")


@pytest.fixture
def keys() -> KeyMaterial:
    return KeyMaterial(ec.generate_private_key(ec.SECP256R1()), AES_KEY)


def test_aes_key_check_value():
    assert aes_key_check_value(AES_KEY) == "omRR"


def test_start_receipt_chain_value_is_the_hash_of_the_cashbox_id():
    assert chain_value(None, CASHBOX) == "cg8hNU5ihto="


@pytest.mark.parametrize(
    ("receipt_number", "counter", "expected"),
    [("1", 0, "McyCnXDKm8Q="), ("2", 1750, "ogTbvB/RZDA="), ("5", 124006, "UsJMO5ik5yw=")],
)
def test_turnover_counter_vectors(receipt_number, counter, expected):
    assert encrypt_turnover(counter, AES_KEY, CASHBOX, receipt_number) == expected
    assert decrypt_turnover(expected, AES_KEY, CASHBOX, receipt_number) == counter


def test_negative_counter_is_twos_complement():
    field = encrypt_turnover(-1200, AES_KEY, CASHBOX, "9")
    assert len(base64.b64decode(field)) == 8
    assert decrypt_turnover(field, AES_KEY, CASHBOX, "9") == -1200


def test_reference_payload_byte_for_byte():
    data = receipt_data_string(
        zda="AT0",
        cashbox_id=CASHBOX,
        receipt_number="2",
        moment=datetime(2016, 3, 11, 4, 0, 0),
        amounts=(1200, 550, 0, 0, 0),
        counter_field=encrypt_turnover(1750, AES_KEY, CASHBOX, "2"),
        key_id=KEY_ID,
        chain="TVh6zbBItbQ=",
    )
    assert data == (
        "_R1-AT0_CASHBOX-DEMO-1_2_2016-03-11T04:00:00_12,00_5,50_0,00_0,00_0,00_ogTbvB/RZDA=_U:ATU12345678-K1_TVh6zbBItbQ="
    )


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (1750, "17,50"),
        (-1200, "-12,00"),
        (0, "0,00"),
        (5, "0,05"),
        (-5, "-0,05"),
        (120034, "1200,34"),
        (100, "1,00"),
    ],
)
def test_amount_format_has_comma_two_decimals_and_no_grouping(cents, text):
    assert format_amount(cents) == text
    assert AMOUNT_FORMAT.match(text)


def test_jws_is_compact_es256_without_typ_and_raw_signature(keys):
    jws = sign_jws("_R1-AT0_X_1", keys)
    header, payload, signature = jws.split(".")
    assert header == JWS_HEADER == "eyJhbGciOiJFUzI1NiJ9"
    assert json.loads(b64url_decode(header)) == {"alg": "ES256"}
    assert "=" not in payload + signature
    assert len(b64url_decode(signature)) == 64  # raw r||s, not DER
    assert open_jws(jws, load_public_key(keys.public_key_b64)) == "_R1-AT0_X_1"


def test_jws_with_another_payload_or_typ_header_is_refused(keys):
    header, payload, signature = sign_jws("_R1-AT0_X_1", keys).split(".")
    forged_payload = base64.urlsafe_b64encode(b"_R1-AT0_X_2").decode().rstrip("=")
    with pytest.raises(ValueError, match="signature"):
        open_jws(f"{header}.{forged_payload}.{signature}", load_public_key(keys.public_key_b64))
    typ = base64.urlsafe_b64encode(b'{"alg":"ES256","typ":"JWT"}').decode().rstrip("=")
    with pytest.raises(ValueError, match="header"):
        open_jws(f"{typ}.{payload}.{signature}", load_public_key(keys.public_key_b64))


def test_qr_string_re_encodes_the_signature_as_standard_base64(keys):
    jws = sign_jws("_R1-AT0_X_1", keys)
    qr = qr_string(jws)
    data, _, signature = qr.rpartition("_")
    assert data == "_R1-AT0_X_1"
    assert base64.b64decode(signature, validate=True) == b64url_decode(jws.split(".")[2])
    expected_code = base64.urlsafe_b64encode(hashlib.sha256(qr.encode()).digest()[:8]).decode().rstrip("=")
    assert short_code(jws) == expected_code
    assert len(expected_code) == 11


def _receipt(number: int, kind: str, turnover: int, **gross: int) -> ReceiptData:
    totals = {bucket: BucketTotals(amount, amount, 0) for bucket, amount in gross.items()}
    return ReceiptData(
        CASHBOX, number, kind, datetime(2016, 3, 11, 4, 0, tzinfo=VIENNA), "EUR", totals, turnover
    )


def test_demo_sequence_reproduces_the_vectors_and_chains(keys):
    """Start (counter 0), standard 12,00 + 5,50 (1750), storno -12,00, training, then receipt 5 at 124006."""
    profile = RksvProfile(CASHBOX, KEY_ID, AES_KEY)
    start = profile.sign(_receipt(1, "START", 0), None, keys)
    start_fields = open_jws(start, load_public_key(keys.public_key_b64)).split("_")
    assert start_fields[1:5] == ["R1-AT0", CASHBOX, "1", "2016-03-11T04:00:00"]
    assert start_fields[5:10] == ["0,00"] * 5
    assert start_fields[10:] == ["McyCnXDKm8Q=", KEY_ID, "cg8hNU5ihto="]

    sale = profile.sign(_receipt(2, "SALE", 1750, Normal=1200, Erm1=550), start, keys)
    sale_data = open_jws(sale, load_public_key(keys.public_key_b64))
    assert sale_data.startswith(
        "_R1-AT0_CASHBOX-DEMO-1_2_2016-03-11T04:00:00_12,00_5,50_0,00_0,00_0,00_ogTbvB/RZDA=_"
    )
    assert sale_data.endswith("_" + base64.b64encode(hashlib.sha256(start.encode()).digest()[:8]).decode())

    storno = profile.sign(_receipt(3, "STORNO", 550, Normal=-1200), sale, keys)
    assert "_-12,00_0,00_0,00_0,00_0,00_U1RP_" in open_jws(storno, load_public_key(keys.public_key_b64))
    training = profile.sign(_receipt(4, "TRAINING", 550, Normal=500), storno, keys)
    assert "_5,00_0,00_0,00_0,00_0,00_VFJB_" in open_jws(training, load_public_key(keys.public_key_b64))

    fifth = profile.sign(_receipt(5, "SALE", 124006, Normal=123456), training, keys)
    assert open_jws(fifth, load_public_key(keys.public_key_b64)).split("_")[10] == "UsJMO5ik5yw="


def test_profile_check_catches_a_changed_amount(keys):
    profile = RksvProfile(CASHBOX, KEY_ID, AES_KEY)
    receipt = _receipt(2, "SALE", 1750, Normal=1200, Erm1=550)
    code = profile.sign(receipt, None, keys)
    profile.check(receipt, code, None, load_public_key(keys.public_key_b64))
    with pytest.raises(ValueError, match=r"'12,00' in field 5 where the journal gives '13,00'"):
        profile.check(
            _receipt(2, "SALE", 1850, Normal=1300, Erm1=550), code, None, load_public_key(keys.public_key_b64)
        )


@pytest.mark.parametrize("name", ["normal", "ERM1", "Erm2", "null", "besonders"])
def test_bucket_names_are_normalised(name):
    assert RksvProfile.normalize_bucket(name).casefold() == name.casefold()


def test_unknown_bucket_is_refused():
    with pytest.raises(ValueError, match="not an RKSV tax bucket"):
        RksvProfile.normalize_bucket("A")
