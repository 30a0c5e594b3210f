"""The auditor's export: one ZIP holding the whole journal, signed.

* ``METADATA.json``: register, profile, algorithms, public key, counts and the last entry hash;
* ``entries.jsonl``: every entry (payload, hashes, signature, evidence), one per line;
* ``closings.jsonl``: the Z, MONTH and YEAR entries again, for reading;
* RKSV only: ``dep-export.json`` (Anlage Z 3) and ``cryptographicMaterialContainer.json`` for the BMF
  Prüftool. The container holds the AES turnover key, as that format requires, so the ZIP is as
  confidential as the register's turnover and is written readable by its owner only;
* ``SIGNATURE.txt``: SHA-256 of each file above, signed with the register's key.

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
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .journal import CLOSING_KINDS, Entry
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


def default_export_name(register_id: str, now: datetime) -> str:
    safe = register_id.replace("/", "-").replace(":", "-")
    return f"fiscal-export-{safe}-{now.strftime('%Y%m%dT%H%M%SZ')}.zip"


def write_export(register: FiscalRegister, output: Path, now: datetime) -> ExportSummary:
    """Write the export of the whole journal to ``output`` (owner-only, replaced atomically)."""
    temporary = output.with_name(output.name + ".partial")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            summary = _write_zip(register, handle, now)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return ExportSummary(output, *summary)


def _write_zip(register: FiscalRegister, handle: IO[bytes], now: datetime) -> tuple[int, int, int]:
    config, keys, store = register.config, register.keys, register.store
    digests: dict[str, str] = {}
    count = receipts = 0
    last: Entry | None = None
    with store.snapshot(), zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:

        def write(name: str, chunks: Iterator[bytes]) -> None:
            digest = hashlib.sha256()
            with archive.open(name, "w") as member:
                for chunk in chunks:
                    digest.update(chunk)
                    member.write(chunk)
            digests[name] = digest.hexdigest()

        def entry_lines(only_closings: bool) -> Iterator[bytes]:
            nonlocal count, receipts, last
            for entry in store.entries(raw=True):
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
        if config.profile == "rksv":
            write(DEP, _dep_chunks(store.entries()))
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
