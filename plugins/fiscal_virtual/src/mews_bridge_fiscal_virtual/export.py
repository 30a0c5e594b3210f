"""The auditor's export: one ZIP holding the whole journal, or the business days of a period, signed.

* ``METADATA.json``: register, profile, algorithms, public key, counts and the last entry hash;
* ``entries.jsonl``: every entry (payload, hashes, signature, evidence), one per line;
* ``closings.jsonl``: the Z, MONTH and YEAR entries again, for reading;
* RKSV only: ``dep-export.json`` (Anlage Z 3) and ``cryptographicMaterialContainer.json`` for the BMF
  Prüftool. The container holds the AES turnover key, as that format requires, so the ZIP is as
  confidential as the register's turnover and is written readable by its owner only;
* ``SIGNATURE.txt``: SHA-256 of each file above, signed with the register's key.

A period export (``--from``/``--to``, business days in property time) holds the records from just
after the last daily closing before the period up to the closings of its last day, the month and year
closings whose period ends in it included; so every daily closing in it can be recomputed, and so can
the month and year closings of whole months. ``anchors.jsonl`` adds the signed records the check
starts from: the start entry (register, keys), the record just before, the last receipt before (the
RKSV chain) and the last closing of each type before (their numbering).

The journal is read in one snapshot and streamed, so the export of a years-long journal never sits
in memory and the bridge can keep writing meanwhile.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from .journal import CLOSING_KINDS, Entry, JournalStore
from .register import FiscalRegister, format_ts

EXPORT_FORMAT = "mews-bridge-fiscal-export"
EXPORT_VERSION = 1
MANIFEST_HEADER = f"{EXPORT_FORMAT} manifest {EXPORT_VERSION}"
METADATA = "METADATA.json"
ENTRIES = "entries.jsonl"
CLOSINGS = "closings.jsonl"
DEP = "dep-export.json"
CONTAINER = "cryptographicMaterialContainer.json"
SIGNATURE = "SIGNATURE.txt"
ANCHORS = "anchors.jsonl"
ALGORITHMS = {
    "entry_hash": "SHA-256(bytes(prev_hash) || UTF-8(JCS RFC 8785 of payload)), hex",
    "entry_signature": "ECDSA P-256 SHA-256 over bytes(entry_hash), raw r||s, base64",
    "receipt_code": "compact JWS ES256 over the profile's receipt data string",
    "manifest_signature": "ECDSA P-256 SHA-256 over the manifest lines, raw r||s, base64",
}


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    entries: int
    receipts: int
    last_seq: int


class ExportError(Exception):
    """The export cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class Period:
    """Business days ``start`` to ``end`` (inclusive) and the records that cover them."""

    start: date
    end: date
    first_seq: int
    last_seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
        }


def default_export_name(register_id: str, now: datetime) -> str:
    safe = register_id.replace("/", "-").replace(":", "-")
    return f"fiscal-export-{safe}-{now.strftime('%Y%m%dT%H%M%SZ')}.zip"


def closing_end(closing: dict[str, Any]) -> date:
    """The last business day a closing's period covers."""
    period = closing["period"]
    if closing["type"] == "Z":
        return date.fromisoformat(period)
    if closing["type"] == "YEAR":
        return date(int(period), 12, 31)
    year, month = map(int, period.split("-"))
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def find_period(store: JournalStore, start: date, end: date) -> Period:
    """The records of business days ``start`` to ``end``, from just after the last daily closing
    before them; raise :class:`ExportError` if there are none."""
    if end < start:
        raise ExportError(f"the period ends ({end}) before it starts ({start})")
    after_z = 0
    first = last = None
    for entry in store.entries():
        p = entry.payload
        closing = p["closing"]
        day = closing_end(closing) if closing else date.fromisoformat(p["business_day"])
        if day < start:
            if entry.kind == "Z" and first is None:
                after_z = entry.seq
            continue
        if day > end:
            if closing is None:
                break
            continue
        first = first or after_z + 1
        last = entry.seq
    if first is None or last is None:
        raise ExportError(f"the journal holds no records of business days {start} to {end}")
    return Period(start, end, first, last)


def write_export(
    register: FiscalRegister, output: Path, now: datetime, period: tuple[date, date] | None = None
) -> ExportSummary:
    """Write the export of the whole journal, or of the business days ``period``, to ``output``
    (owner-only, replaced atomically)."""
    temporary = output.with_name(output.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            summary = _write_zip(register, handle, now, period)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return ExportSummary(output, *summary)


def _write_zip(
    register: FiscalRegister, handle: IO[bytes], now: datetime, period: tuple[date, date] | None
) -> tuple[int, int, int]:
    config, keys, store = register.config, register.keys, register.store
    digests: dict[str, str] = {}
    count = receipts = 0
    last: Entry | None = None
    with store.snapshot(), zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        span = find_period(store, *period) if period else None
        after = span.first_seq - 1 if span else 0
        until = span.last_seq if span else None

        def selected(*, raw: bool = False) -> Iterator[Entry]:
            for entry in store.entries(after, raw=raw):
                if until is not None and entry.seq > until:
                    return
                yield entry

        def write(name: str, chunks: Iterator[bytes]) -> None:
            digest = hashlib.sha256()
            with archive.open(name, "w") as member:
                for chunk in chunks:
                    digest.update(chunk)
                    member.write(chunk)
            digests[name] = digest.hexdigest()

        def entry_lines(only_closings: bool) -> Iterator[bytes]:
            nonlocal count, receipts, last
            for entry in selected(raw=True):
                if only_closings:
                    if entry.kind in CLOSING_KINDS:
                        yield _line(entry.to_export())
                    continue
                count += 1
                receipts += entry.payload.get("receipt_counter") is not None
                last = entry
                yield _line(entry.to_export())

        write(ENTRIES, entry_lines(only_closings=False))
        write(CLOSINGS, entry_lines(only_closings=True))
        if after:
            write(ANCHORS, (_line(anchor.to_export()) for anchor in _anchors(store, after)))
        if config.profile == "rksv":
            write(DEP, _dep_chunks(selected()))
            container = {
                "base64AESKey": base64.b64encode(keys.aes_key).decode(),
                "certificateOrPublicKeyMap": {
                    config.key_label: {
                        "id": config.key_label,
                        "signatureDeviceType": "PUBLIC_KEY",
                        "signatureCertificateOrPublicKey": keys.public_key_b64,
                    }
                },
            }
            write(CONTAINER, iter([_json_bytes(container)]))
        metadata: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "created_utc": format_ts(now),
            "register": config.to_json(),
            "public_key": keys.public_key_b64,
            "key_fingerprint": keys.fingerprint,
            "algorithms": ALGORITHMS,
            "period": span.to_json() if span else None,
            "entries": count,
            "receipts": receipts,
            "last_seq": last.seq if last else 0,
            "last_entry_hash": last.entry_hash if last else None,
        }
        write(METADATA, iter([_json_bytes(metadata)]))
        manifest = manifest_text(digests)
        signature = base64.b64encode(keys.sign(manifest.encode())).decode()
        archive.writestr(SIGNATURE, f"{manifest}signature {signature}\n")
    return count, receipts, last.seq if last else 0


def _anchors(store: JournalStore, after: int) -> list[Entry]:
    """The signed records a period export's check starts from (see the module's docstring)."""
    found = [store.first(), store.by_seq(after), store.last_receipt_before(after + 1)]
    found += [store.last_of_kind_before(kind, after + 1) for kind in sorted(CLOSING_KINDS)]
    unique = {entry.seq: entry for entry in found if entry is not None}
    return [unique[seq] for seq in sorted(unique)]


def manifest_text(digests: dict[str, str]) -> str:
    return MANIFEST_HEADER + "\n" + "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))


def _dep_chunks(entries: Iterator[Entry]) -> Iterator[bytes]:
    """DEP (Anlage Z 3): one group (closed system, no certificate), receipts in journal order."""
    yield b'{"Belege-Gruppe":[{"Signaturzertifikat":"","Zertifizierungsstellen":[],"Belege-kompakt":['
    first = True
    for entry in entries:
        if entry.profile_code:
            yield (b"" if first else b",") + json.dumps(entry.profile_code).encode()
            first = False
    yield b"]}]}\n"


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
