"""Offline verification of an export: needs nothing but the ZIP.

Entries are checked one by one, in order, and the first broken one is named by its line in
``entries.jsonl`` (and its seq and receipt number): numbering without gaps, the hash chain, the
signature of every entry, the evidence digest, time never going backwards and matching the
property's zone, the receipt counter, the turnover counter, one record per Mews command and bill,
a daily closing before each new business day, every closing's totals recomputed, and the profile's
signed receipt code (for RKSV the JWS, the chain value and the encrypted counter). Then the other
files: closings, the RKSV DEP and crypto container, the metadata and the signed manifest.

The public key comes from the export's own start entry; compare its fingerprint (printed) with the
one registered for the device to rule out a wholly re-signed journal.

A period export starts from its signed anchors (start entry, the record before, the last receipt and
closings before): its chain, numbering, RKSV chain values and turnover counter continue from them.
Closings whose period began before the export (a month closing in an export of a month's second
half) cannot be recomputed from it: they are checked for numbering, period and turnover counter
only, and the report counts them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from .closing import ClosingAggregate, business_day
from .export import (
    ANCHORS,
    CLOSINGS,
    CONTAINER,
    DEP,
    ENTRIES,
    EXPORT_FORMAT,
    MANIFEST_HEADER,
    METADATA,
    SIGNATURE,
    closing_end,
    manifest_text,
)
from .journal import (
    CLOSING_KINDS,
    GENESIS_HASH,
    RECEIPT_KINDS,
    REPRINT,
    TURNOVER_KINDS,
    compute_entry_hash,
    raw_digest,
)
from .keys import load_public_key, public_key_fingerprint, verify_signature
from .money import BucketTotals
from .profiles import Profile, ReceiptData, make_profile
from .profiles.rksv import aes_key_check_value
from .register import RegisterConfig, parse_ts, receipt_number

KINDS = RECEIPT_KINDS | CLOSING_KINDS | {REPRINT}
_ZERO_KINDS = frozenset({"START", "NULL", "MONTH", "YEAR", "Z", REPRINT})
_FLAGS = frozenset({"clock_behind"})


class VerificationError(Exception):
    """The export is broken; the message names the first broken record or file."""


@dataclass(frozen=True)
class VerifyReport:
    register_id: str
    profile: str
    entries: int
    receipts: int
    closings: int
    last_seq: int
    key_fingerprint: str
    period: dict[str, Any] | None = None
    """``from``, ``to``, ``first_seq``, ``last_seq`` of a period export; None for the whole journal."""
    first_receipt: str | None = None
    last_receipt: str | None = None
    turnover: int = 0
    """The turnover counter after the last record, in minor units of ``currency``."""
    currency: str = ""
    closings_not_recomputed: int = 0
    """Closings whose period began before the export: checked for numbering and counter only."""


class _Broken(Exception):
    """A check failed on the current record."""


def verify_export(source: Path | IO[bytes]) -> VerifyReport:
    """Check an export completely; raise :class:`VerificationError` at the first problem."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise VerificationError(f"not a readable export ZIP: {exc}") from None
    with archive:
        return _Verifier(archive).run()


class _Verifier:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        names = set(archive.namelist())
        missing = {METADATA, ENTRIES, CLOSINGS, SIGNATURE} - names
        if missing:
            raise VerificationError(f"the export lacks {', '.join(sorted(missing))}")
        self.container = self._json(CONTAINER) if CONTAINER in names else None
        self.config: RegisterConfig | None = None
        self.profile: Profile | None = None
        self.public_key: Any = None
        self.public_key_b64 = ""
        self.fingerprint = ""
        self.tz: ZoneInfo | None = None
        self.seq = 0
        self.prev_hash = GENESIS_HASH
        self.last_ts: Any = None
        self.receipts = 0
        self.prev_code: str | None = None
        self.turnover = 0
        self.commands: set[str] = set()
        self.bills: set[str] = set()
        self.open_day: str | None = None
        self.aggregates: dict[str, ClosingAggregate] = {k: ClosingAggregate(0) for k in CLOSING_KINDS}
        self.closing_numbers: dict[str, int] = dict.fromkeys(CLOSING_KINDS, 0)
        self.closing_periods: dict[str, str] = {}
        self.closing_lines: list[str] = []
        self.codes: list[tuple[str, str]] = []
        self.numbers: set[str] = set()
        self.metadata = self._json(METADATA)
        self.period = _period(self.metadata)
        self.before = 0
        """Records and receipts before a period export's first record."""
        self.receipts_before = 0
        self.first_number: str | None = None
        self.last_number: str | None = None
        self.unchecked: set[str] = set()
        """Closing kinds whose next closing covers records before the export."""
        self.not_recomputed = 0

    def _json(self, name: str) -> Any:
        try:
            return json.loads(self.archive.read(name))
        except (ValueError, KeyError) as exc:
            raise VerificationError(f"{name} is not valid JSON: {exc}") from None

    def run(self) -> VerifyReport:
        if self.period is not None and self.period.get("first_seq", 1) > 1:
            self._anchors(self.period)
        line = 0
        for line, text in enumerate(self._lines(ENTRIES), start=1):
            label = f"{ENTRIES} line {line}"
            try:
                record = json.loads(text)
                label = _label(line, record)
                self._check_entry(record)
                if record["payload"]["kind"] in CLOSING_KINDS:
                    self.closing_lines.append(hashlib.sha256(text.encode()).hexdigest())
            except (_Broken, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise VerificationError(f"{label}: {_reason(exc)}") from None
        if line == 0 or self.config is None:
            raise VerificationError(f"{ENTRIES} holds no records")
        self._check_closings_file()
        if self.config.profile == "rksv":
            self._check_dep()
        self._check_metadata()
        self._check_manifest()
        return VerifyReport(
            register_id=self.config.register_id,
            profile=self.config.profile,
            entries=self.seq - self.before,
            receipts=self.receipts - self.receipts_before,
            closings=len(self.closing_lines),
            last_seq=self.seq,
            key_fingerprint=self.fingerprint,
            period=self.period,
            first_receipt=self.first_number,
            last_receipt=self.last_number,
            turnover=self.turnover,
            currency=self.config.currency,
            closings_not_recomputed=self.not_recomputed,
        )

    def _anchors(self, period: dict[str, Any]) -> None:
        """Start a period export's checks from its signed anchor records."""
        first_seq = int(period["first_seq"])
        if ANCHORS not in self.archive.namelist():
            raise VerificationError(f"the period export lacks {ANCHORS}")
        anchors: dict[int, dict[str, Any]] = {}
        for line, text in enumerate(self._lines(ANCHORS), start=1):
            try:
                record = json.loads(text)
                if record["payload"]["seq"] >= first_seq or (line == 1) != (record["payload"]["seq"] == 1):
                    raise _Broken("not a record before the export (the first one being the start entry)")
                self._check_signed(record)
            except (_Broken, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise VerificationError(f"{ANCHORS} line {line}: {_reason(exc)}") from None
            anchors[record["payload"]["seq"]] = record
        previous = anchors.get(first_seq - 1)
        if previous is None:
            raise VerificationError(f"{ANCHORS} lacks the record before the export (seq {first_seq - 1})")
        p = previous["payload"]
        ended = closing_end(p["closing"]) if p["closing"] else date.fromisoformat(p["business_day"])
        if ended >= date.fromisoformat(period["from"]):
            raise VerificationError(f"{ANCHORS}: the record before the export is of its period ({ended})")
        self.seq = self.before = p["seq"]
        self.prev_hash = previous["entry_hash"]
        self.last_ts = parse_ts(p["ts_utc"])
        self.turnover = p["turnover_counter"]
        receipts = [r["payload"] for r in anchors.values() if r["payload"]["receipt_counter"] is not None]
        last_receipt = max(receipts, key=lambda payload: payload["receipt_counter"])
        self.receipts = self.receipts_before = last_receipt["receipt_counter"]
        self.prev_code = last_receipt["profile_code"]
        for kind in CLOSING_KINDS:
            closings = [r["payload"] for r in anchors.values() if r["payload"]["kind"] == kind]
            if closings:
                last = max(closings, key=lambda payload: payload["seq"])
                self.closing_numbers[kind] = last["closing"]["number"]
                self.closing_periods[kind] = last["closing"]["period"]
            if not (kind == "Z" and p["kind"] == "Z"):  # the daily closing right before starts the export
                self.unchecked.add(kind)
        self.aggregates = {kind: ClosingAggregate(self.turnover) for kind in CLOSING_KINDS}

    def _lines(self, name: str) -> Iterator[str]:
        with self.archive.open(name) as member:
            for raw in member:
                yield raw.decode()

    # -- one entry ---------------------------------------------------------------------------------

    def _check_entry(self, record: dict[str, Any]) -> None:
        if set(record) - {"raw"} != {"payload", "prev_hash", "entry_hash", "signature", "key_id"}:
            raise _Broken("not a journal record (unexpected or missing fields)")
        p = record["payload"]
        if p["seq"] != self.seq + 1:
            raise _Broken(f"seq {p['seq']} follows seq {self.seq}: the numbering has a gap or repeats")
        if record["prev_hash"] != self.prev_hash:
            raise _Broken("it does not link to the previous record (prev_hash)")
        self._check_signed(record)
        if p["raw_sha256"] is None:
            if "raw" in record:
                raise _Broken("it carries evidence its payload does not account for")
        elif "raw" not in record or raw_digest(record["raw"]) != p["raw_sha256"]:
            raise _Broken("its evidence (raw command) was altered or removed")
        self._check_fields(p)
        self._check_time(p)
        self._check_counters(p)
        self._check_lines(p)
        self._check_closing(p)
        self._check_code(p)
        self.seq, self.prev_hash = p["seq"], record["entry_hash"]

    def _check_signed(self, record: dict[str, Any]) -> None:
        """The record's hash and the register key's signature (the start entry brings the key)."""
        p = record["payload"]
        if compute_entry_hash(record["prev_hash"], p) != record["entry_hash"]:
            raise _Broken("its contents do not match its entry hash")
        if p["seq"] == 1:
            self._start(p)
        elif p["kind"] == "START":
            raise _Broken("a second start entry")
        if record["key_id"] != self.fingerprint:
            raise _Broken(f"signed with key {record['key_id']!r}, not the register's key {self.fingerprint}")
        if not verify_signature(
            self.public_key, _b64(record["signature"]), bytes.fromhex(record["entry_hash"])
        ):
            raise _Broken("its signature is not valid")

    def _start(self, p: dict[str, Any]) -> None:
        if p["kind"] != "START":
            raise _Broken("the first record is not the start entry")
        start = p["start"]
        self.config = RegisterConfig.from_json(start["config"])
        self.public_key_b64 = start["public_key"]
        self.public_key = load_public_key(self.public_key_b64)
        self.fingerprint = public_key_fingerprint(base64.b64decode(self.public_key_b64))
        if start["key_fingerprint"] != self.fingerprint:
            raise _Broken("its key fingerprint does not match its public key")
        self.tz = ZoneInfo(self.config.timezone)
        aes_key = None
        if self.config.profile == "rksv":
            aes_key = self._container_key(start)
        self.profile = make_profile(
            self.config.profile,
            self.config.register_id,
            self.config.key_label or "",
            aes_key,
            self.config.zda,
        )

    def _container_key(self, start: dict[str, Any]) -> bytes:
        """The AES key from the crypto container, checked against the start entry."""
        where = CONTAINER
        if self.container is None:
            raise VerificationError(f"the export lacks {CONTAINER}, needed to check RKSV turnover counters")
        try:
            key = base64.b64decode(self.container["base64AESKey"], validate=True)
            if len(key) != 32 or aes_key_check_value(key) != start["aes_key_check"]:
                raise VerificationError(f"{where}: the AES key is not the register's (check value differs)")
            assert self.config is not None
            entry = self.container["certificateOrPublicKeyMap"][self.config.key_label]
            if (
                entry["id"] != self.config.key_label
                or entry["signatureDeviceType"] != "PUBLIC_KEY"
                or entry["signatureCertificateOrPublicKey"] != start["public_key"]
                or len(self.container["certificateOrPublicKeyMap"]) != 1
                or set(self.container) != {"base64AESKey", "certificateOrPublicKeyMap"}
            ):
                raise VerificationError(f"{where}: the public key entry does not match the register's key")
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise VerificationError(f"{where} is malformed: {_reason(exc)}") from None
        return key

    def _check_fields(self, p: dict[str, Any]) -> None:
        c = self.config
        assert c is not None
        if p["v"] != 1:
            raise _Broken(f"unknown payload version {p['v']!r}")
        if p["kind"] not in KINDS:
            raise _Broken(f"unknown kind {p['kind']!r}")
        expected = {
            "register_id": c.register_id,
            "currency": c.currency,
            "tz": c.timezone,
            "profile": c.profile,
        }
        for key, value in expected.items():
            if p[key] != value:
                raise _Broken(f"{key} is {p[key]!r}, but the register's is {value!r}")
        if not set(p["flags"]) <= _FLAGS:
            raise _Broken(f"unknown flags {p['flags']!r}")
        for bucket, totals in p["totals"].items():
            if totals["gross"] != totals["net"] + totals["tax"] or set(totals) != {"gross", "net", "tax"}:
                raise _Broken(f"in bucket {bucket} net + tax is not gross")
        if p["kind"] in _ZERO_KINDS and (p["totals"] or p["payments"]):
            raise _Broken(f"a {p['kind']} entry with amounts")
        if (p["kind"] == REPRINT) != (p.get("reprint") is not None):
            raise _Broken("reprint data on an entry that is not a reprint, or a reprint without it")
        if p["kind"] == REPRINT and not self._earlier_receipt(p["reprint"]["receipt_number"]):
            raise _Broken(f"it reprints {p['reprint']['receipt_number']}, which is not an earlier receipt")
        command = p["source_command_id"]
        if command is not None:
            if command in self.commands:
                raise _Broken(f"a second record for Mews command {command}")
            self.commands.add(command)
        bill = p["bill"]
        if bill is not None:
            if bill["id"] in self.bills:
                raise _Broken(f"a second record for Mews bill {bill['id']}")
            self.bills.add(bill["id"])

    def _earlier_receipt(self, number: str) -> bool:
        """Whether ``number`` is a receipt before this record (in a period export, maybe before it)."""
        assert self.config is not None
        counter = number.removeprefix(f"{self.config.register_id}-")
        if not counter.isdigit() or receipt_number(self.config.register_id, int(counter)) != number:
            return False
        return int(counter) <= self.receipts_before or number in self.numbers

    @staticmethod
    def _check_lines(p: dict[str, Any]) -> None:
        """The printed item lines, where recorded, add up to the receipt's buckets."""
        if p.get("lines") is None:
            return
        sums: dict[str, int] = {}
        for line in p["lines"]:
            sums[line["bucket"]] = sums.get(line["bucket"], 0) + line["amount"]
        if {k: v for k, v in sums.items() if v} != {b: t["gross"] for b, t in p["totals"].items()}:
            raise _Broken("its item lines do not add up to its totals")

    def _check_time(self, p: dict[str, Any]) -> None:
        assert self.tz is not None and self.config is not None
        ts = parse_ts(p["ts_utc"])
        if self.last_ts is not None and ts < self.last_ts:
            raise _Broken(f"its time {p['ts_utc']} is earlier than the previous record's")
        if p["ts_local"] != ts.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M:%S"):
            raise _Broken(f"its local time {p['ts_local']} is not {p['ts_utc']} in {self.config.timezone}")
        day = business_day(ts, self.tz, self.config.cutoff).isoformat()
        if p["business_day"] != day:
            raise _Broken(f"its business day {p['business_day']} should be {day}")
        if self.period is not None:
            end = closing_end(p["closing"]) if p["kind"] in CLOSING_KINDS else date.fromisoformat(day)
            if end > date.fromisoformat(self.period["to"]) or (
                p["kind"] not in CLOSING_KINDS and end < date.fromisoformat(self.period["from"])
            ):
                raise _Broken(f"it is of business day {end}, outside the export's period")
        if p["kind"] not in CLOSING_KINDS:
            if self.open_day is not None and day != self.open_day:
                raise _Broken(f"no daily closing (Z) of {self.open_day} before this record of {day}")
            self.open_day = day
        self.last_ts = ts

    def _check_counters(self, p: dict[str, Any]) -> None:
        assert self.config is not None
        if p["kind"] in RECEIPT_KINDS:
            if p["receipt_counter"] != self.receipts + 1:
                raise _Broken(
                    f"receipt number {p['receipt_counter']} follows {self.receipts}: a gap or a repeat"
                )
            if p["receipt_number"] != receipt_number(self.config.register_id, p["receipt_counter"]):
                raise _Broken(f"receipt number {p['receipt_number']!r} does not match its counter")
            if not isinstance(p["profile_code"], str):
                raise _Broken("a receipt without its signed code")
            self.receipts += 1
            self.first_number = self.first_number or p["receipt_number"]
            self.last_number = p["receipt_number"]
        elif (
            p["receipt_counter"] is not None
            or p["receipt_number"] is not None
            or p["profile_code"] is not None
        ):
            raise _Broken("a receipt number or code on an entry that is not a receipt")
        gross = sum(t["gross"] for t in p["totals"].values())
        expected = self.turnover + (gross if p["kind"] in TURNOVER_KINDS else 0)
        if p["turnover_counter"] != expected:
            raise _Broken(f"turnover counter {p['turnover_counter']} should be {expected}")
        self.turnover = expected

    def _check_closing(self, p: dict[str, Any]) -> None:
        kind = p["kind"]
        if kind in CLOSING_KINDS:
            closing = p["closing"]
            number = self.closing_numbers[kind] + 1
            expected = {
                "type": kind,
                "number": number,
                "period": closing["period"],
                **self.aggregates[kind].result(self.turnover),
            }
            if kind in self.unchecked:  # it covers records before the export: not recomputable here
                self.unchecked.discard(kind)
                self.not_recomputed += 1
                expected = {**closing, **{k: expected[k] for k in ("type", "number", "turnover_after")}}
            if closing != expected:
                wrong = sorted(k for k in expected if closing.get(k) != expected[k]) or sorted(
                    set(closing) - set(expected)
                )
                raise _Broken(f"the {kind} closing does not match the records it covers ({', '.join(wrong)})")
            self._check_period(kind, closing["period"])
            if p["z_number"] != (number if kind == "Z" else None):
                raise _Broken("its z_number does not match")
            self.closing_numbers[kind] = number
            self.aggregates[kind] = ClosingAggregate(self.turnover)
            if kind == "Z":
                self.open_day = None
        elif p["closing"] is not None or p["z_number"] is not None:
            raise _Broken("closing data on an entry that is not a closing")
        for other, aggregate in self.aggregates.items():
            if other != kind:
                aggregate.add(p["seq"], kind, p["ts_utc"], p["totals"], p["payments"])

    def _check_period(self, kind: str, period: str) -> None:
        if kind == "Z":
            date.fromisoformat(period)
            if self.open_day not in (None, period):
                raise _Broken(f"the Z closing names {period} but covers {self.open_day}")
            valid = self.closing_periods.get(kind, "") <= period
        else:
            shape = "%04d" if kind == "YEAR" else "%04d-%02d"
            parts = tuple(int(x) for x in period.split("-"))
            valid = shape % parts == period and self.closing_periods.get(kind, "") < period
        if not valid:
            raise _Broken(f"the {kind} closing's period {period!r} is malformed or out of order")
        self.closing_periods[kind] = period

    def _check_code(self, p: dict[str, Any]) -> None:
        if p["kind"] not in RECEIPT_KINDS:
            return
        assert self.profile is not None and self.tz is not None
        receipt = ReceiptData(
            register_id=p["register_id"],
            number=p["receipt_counter"],
            kind=p["kind"],
            ts_local=parse_ts(p["ts_utc"]).astimezone(self.tz),
            currency=p["currency"],
            totals=_bucket_totals(p["totals"]),
            turnover=p["turnover_counter"],
        )
        self.profile.check(receipt, p["profile_code"], self.prev_code, self.public_key)
        self.prev_code = p["profile_code"]
        self.codes.append((p["receipt_number"], hashlib.sha256(p["profile_code"].encode()).hexdigest()))
        self.numbers.add(p["receipt_number"])

    # -- the other files ---------------------------------------------------------------------------

    def _check_closings_file(self) -> None:
        """``closings.jsonl`` repeats the journal's closing entries, byte for byte."""
        count = 0
        for count, text in enumerate(self._lines(CLOSINGS), start=1):
            digest = hashlib.sha256(text.encode()).hexdigest()
            if count > len(self.closing_lines) or digest != self.closing_lines[count - 1]:
                raise VerificationError(f"{CLOSINGS} line {count}: differs from the journal's closing entry")
        if count != len(self.closing_lines):
            raise VerificationError(
                f"{CLOSINGS} lists {count} closings, the journal {len(self.closing_lines)}"
            )

    def _check_dep(self) -> None:
        if DEP not in self.archive.namelist():
            raise VerificationError(f"the export lacks {DEP}")
        dep = self._json(DEP)
        try:
            if not isinstance(dep, dict):
                raise ValueError("not a JSON object")
            (group,) = dep["Belege-Gruppe"]
            if set(group) != {"Signaturzertifikat", "Zertifizierungsstellen", "Belege-kompakt"} or set(
                dep
            ) != {"Belege-Gruppe"}:
                raise ValueError("unexpected fields")
            if group["Signaturzertifikat"] != "" or group["Zertifizierungsstellen"] != []:
                raise ValueError("a closed system (AT0) has no certificates")
            codes = group["Belege-kompakt"]
        except (TypeError, ValueError, KeyError) as exc:
            raise VerificationError(f"{DEP} is not a DEP export: {_reason(exc)}") from None
        for index, (number, digest) in enumerate(self.codes):
            if index >= len(codes) or hashlib.sha256(str(codes[index]).encode()).hexdigest() != digest:
                raise VerificationError(f"{DEP}: receipt {number} differs from the journal or is missing")
        if len(codes) != len(self.codes):
            raise VerificationError(f"{DEP} holds {len(codes)} receipts, the journal {len(self.codes)}")

    def _check_metadata(self) -> None:
        meta = self.metadata
        assert self.config is not None
        expected = {
            "format": EXPORT_FORMAT,
            "register": self.config.to_json(),
            "public_key": self.public_key_b64,
            "key_fingerprint": self.fingerprint,
            "entries": self.seq - self.before,
            "receipts": self.receipts - self.receipts_before,
            "last_seq": self.seq,
            "last_entry_hash": self.prev_hash,
        }
        if self.period is not None:
            expected["period"] = {**self.period, "first_seq": self.before + 1, "last_seq": self.seq}
        wrong = sorted(k for k, v in expected.items() if not isinstance(meta, dict) or meta.get(k) != v)
        if wrong:
            raise VerificationError(f"{METADATA} does not match the journal ({', '.join(wrong)})")

    def _check_manifest(self) -> None:
        """``SIGNATURE.txt``: a signed list of SHA-256 digests, one per file, and nothing else."""
        text = self.archive.read(SIGNATURE).decode(errors="replace")
        body, _, last = text.rstrip("\n").rpartition("\n")
        keyword, _, signature = last.partition(" ")
        if keyword != "signature" or not verify_signature(
            self.public_key, _b64(signature), (body + "\n").encode()
        ):
            raise VerificationError(f"{SIGNATURE}: the manifest's signature is not valid")
        header, *lines = body.split("\n")
        listed = {name: digest for digest, _, name in (line.partition("  ") for line in lines)}
        if header != MANIFEST_HEADER or manifest_text(listed) != body + "\n":
            raise VerificationError(f"{SIGNATURE}: not a manifest of this format")
        present = set(self.archive.namelist()) - {SIGNATURE}
        for name in sorted(present | set(listed)):
            if name not in present:
                raise VerificationError(f"{name} is listed in the signed manifest but missing")
            if name not in listed:
                raise VerificationError(f"{name} is not in the signed manifest")
            if hashlib.sha256(self.archive.read(name)).hexdigest() != listed[name]:
                raise VerificationError(f"{name} differs from its digest in the signed manifest")


def _period(metadata: Any) -> dict[str, Any] | None:
    """The period of a period export from its metadata (None: the whole journal)."""
    period = metadata.get("period") if isinstance(metadata, dict) else None
    if period is None:
        return None
    try:
        if set(period) != {"from", "to", "first_seq", "last_seq"} or not isinstance(period["first_seq"], int):
            raise ValueError("unexpected fields")
        date.fromisoformat(period["from"]), date.fromisoformat(period["to"])
    except (TypeError, ValueError) as exc:
        raise VerificationError(f"{METADATA}: its period is malformed ({_reason(exc)})") from None
    return period


def _bucket_totals(totals: dict[str, Any]) -> dict[str, BucketTotals]:
    return {bucket: BucketTotals.from_json(value) for bucket, value in totals.items()}


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Broken("a signature that is not base64") from None


def _label(line: int, record: Any) -> str:
    label = f"{ENTRIES} line {line}"
    payload = record.get("payload") if isinstance(record, dict) else None
    if isinstance(payload, dict):
        label += f" (seq {payload.get('seq')}"
        label += (
            f", receipt {payload['receipt_number']})"
            if payload.get("receipt_number")
            else f", {payload.get('kind')})"
        )
    return label


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"the field {exc.args[0]!r} is missing"
    return str(exc) or type(exc).__name__
