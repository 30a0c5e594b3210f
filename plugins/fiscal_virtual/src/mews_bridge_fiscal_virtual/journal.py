"""The append-only fiscal journal: SQLite (WAL, ``synchronous=FULL``) with a hash chain.

Every entry is a JSON payload. Its canonical form (RFC 8785 / JCS) is hashed together with the
previous entry's hash, ``entry_hash = SHA-256(prev_hash ‖ JCS(payload))``, and that hash is signed by
the device key. The table columns are copies of payload fields, there for lookups only: verification
always works from the payload. Triggers refuse UPDATE and DELETE, and ``UNIQUE(device_id,
source_command_id)`` plus a unique bill id make a second record for the same Mews command or bill
impossible, whatever the code above does.

All methods block; the driver calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
CLOSING_KINDS = frozenset({"Z", "MONTH", "YEAR"})
RECEIPT_KINDS = frozenset({"START", "SALE", "REFUND", "STORNO", "TRAINING", "NULL", "MONTH", "YEAR"})
TURNOVER_KINDS = frozenset({"SALE", "REFUND", "STORNO"})
"""Kinds whose amounts move the turnover counter (RKSV: standard and storno receipts)."""
JOURNAL_FILE = "fiscal-journal.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fiscal_entries (
    device_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ts_utc TEXT NOT NULL,
    ts_local TEXT NOT NULL,
    tz TEXT NOT NULL,
    business_day TEXT NOT NULL,
    source_command_id TEXT,
    source_bill_id TEXT,
    bill_number TEXT,
    correction_type TEXT,
    corrected_bill_id TEXT,
    currency TEXT NOT NULL,
    totals_json TEXT NOT NULL,
    payments_json TEXT NOT NULL,
    receipt_counter INTEGER,
    turnover_counter INTEGER NOT NULL,
    z_number INTEGER,
    payload_canonical TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    signature TEXT NOT NULL,
    key_id TEXT NOT NULL,
    profile TEXT NOT NULL,
    profile_code TEXT,
    raw_command BLOB,
    PRIMARY KEY (device_id, seq),
    UNIQUE (device_id, source_command_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS fiscal_entries_bill ON fiscal_entries (device_id, source_bill_id)
    WHERE source_bill_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS fiscal_entries_receipt ON fiscal_entries (device_id, receipt_counter)
    WHERE receipt_counter IS NOT NULL;
CREATE INDEX IF NOT EXISTS fiscal_entries_kind ON fiscal_entries (device_id, kind, seq);
CREATE TRIGGER IF NOT EXISTS fiscal_entries_no_update BEFORE UPDATE ON fiscal_entries
BEGIN SELECT RAISE(ABORT, 'the fiscal journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS fiscal_entries_no_delete BEFORE DELETE ON fiscal_entries
BEGIN SELECT RAISE(ABORT, 'the fiscal journal is append-only'); END;
"""

_COLUMNS = "payload_canonical, prev_hash, entry_hash, signature, key_id, raw_command"


def canonical_json(value: Any) -> str:
    """RFC 8785 (JCS) text of ``value``, for the subset the journal uses (no floats).

    With ASCII keys, sorted keys and minimal separators this is exactly JCS; floats are refused so
    that no number formatting question can ever arise (money is in integer minor units).
    """
    _reject_floats(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("floats are not allowed in fiscal payloads")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list):
        for item in value:
            _reject_floats(item)


def plain_json(value: Any) -> Any:
    """``value`` with floats and Decimals as decimal strings, ready for :func:`canonical_json`.

    Used for evidence copied from Mews (its JSON numbers are amounts).
    """
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form, i.e. the JSON literal Mews sent
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    return str(value)


def compute_entry_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(payload).encode()).hexdigest()


def raw_digest(raw: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(raw).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One journal entry as stored and exported."""

    payload: dict[str, Any]
    prev_hash: str
    entry_hash: str
    signature: str
    key_id: str
    raw: dict[str, Any] | None = None

    @property
    def seq(self) -> int:
        return int(self.payload["seq"])

    @property
    def kind(self) -> str:
        return str(self.payload["kind"])

    @property
    def receipt_number(self) -> str | None:
        return self.payload.get("receipt_number")

    @property
    def profile_code(self) -> str | None:
        return self.payload.get("profile_code")

    def to_export(self) -> dict[str, Any]:
        record = {
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "entry_hash": self.entry_hash,
            "signature": self.signature,
            "key_id": self.key_id,
        }
        if self.raw is not None:
            record["raw"] = self.raw
        return record


class JournalStore:
    """The SQLite file of one register. Thread-safe; one connection, serialized by a lock.

    Every query names the register (``device_id``) so that SQLite can answer it from an index
    instead of scanning years of entries.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Legal data: every commit is fsynced before the command is acknowledged.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        path.chmod(0o600)
        row = self._db.execute("SELECT device_id FROM fiscal_entries LIMIT 1").fetchone()
        self.device_id: str | None = row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction: ``BEGIN IMMEDIATE`` so that another process (the CLI) waits its turn."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: everything read inside sees one consistent state (an export)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                self._db.execute("ROLLBACK")

    def insert(self, entry: Entry) -> None:
        p = entry.payload
        if self.device_id not in (None, p["register_id"]):
            raise ValueError(f"this journal belongs to register {self.device_id}")
        bill = p.get("bill") or {}
        raw = zlib.compress(canonical_json(entry.raw).encode(), 9) if entry.raw is not None else None
        with self._lock:
            self._db.execute(
                "INSERT INTO fiscal_entries (device_id, seq, kind, ts_utc, ts_local, tz, business_day,"
                " source_command_id, source_bill_id, bill_number, correction_type, corrected_bill_id,"
                " currency, totals_json, payments_json, receipt_counter, turnover_counter, z_number,"
                " payload_canonical, prev_hash, entry_hash, signature, key_id, profile, profile_code,"
                " raw_command)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    p["register_id"],
                    p["seq"],
                    p["kind"],
                    p["ts_utc"],
                    p["ts_local"],
                    p["tz"],
                    p["business_day"],
                    p.get("source_command_id"),
                    bill.get("id"),
                    bill.get("number"),
                    bill.get("correction_type"),
                    bill.get("corrected_bill_id"),
                    p["currency"],
                    canonical_json(p["totals"]),
                    canonical_json(p["payments"]),
                    p.get("receipt_counter"),
                    p["turnover_counter"],
                    p.get("z_number"),
                    canonical_json(p),
                    entry.prev_hash,
                    entry.entry_hash,
                    entry.signature,
                    entry.key_id,
                    p["profile"],
                    p.get("profile_code"),
                    raw,
                ),
            )
            self.device_id = p["register_id"]

    def _one(
        self, where: str, params: tuple[Any, ...] = (), order: str = "", *, raw: bool = False
    ) -> Entry | None:
        columns = _COLUMNS if raw else _COLUMNS.replace("raw_command", "NULL")
        with self._lock:
            row = self._db.execute(
                f"SELECT {columns} FROM fiscal_entries WHERE device_id = ? AND {where} {order} LIMIT 1",
                (self.device_id, *params),
            ).fetchone()
        return _entry(row) if row else None

    def last(self) -> Entry | None:
        return self._one("1", order="ORDER BY seq DESC")

    def first(self) -> Entry | None:
        return self._one("seq = 1")

    def last_receipt(self) -> Entry | None:
        return self._one("receipt_counter IS NOT NULL", order="ORDER BY receipt_counter DESC")

    def last_of_kind(self, kind: str) -> Entry | None:
        return self._one("kind = ?", (kind,), "ORDER BY seq DESC")

    def last_open(self, after_seq: int) -> Entry | None:
        """The newest entry after ``after_seq`` that is not a closing (one a daily closing must cover)."""
        return self._one("seq > ? AND kind NOT IN ('Z', 'MONTH', 'YEAR')", (after_seq,), "ORDER BY seq DESC")

    def first_open(self, after_seq: int) -> Entry | None:
        """The oldest entry after ``after_seq`` that is not a closing: what the next closing is late for."""
        return self._one("seq > ? AND kind NOT IN ('Z', 'MONTH', 'YEAR')", (after_seq,), "ORDER BY seq")

    def by_command(self, command_id: str, *, raw: bool = False) -> Entry | None:
        return self._one("source_command_id = ?", (command_id,), raw=raw)

    def by_bill(self, bill_id: str) -> Entry | None:
        return self._one("source_bill_id = ?", (bill_id,))

    def entries(self, after_seq: int = 0, *, raw: bool = False) -> Iterator[Entry]:
        """Entries in order, read in pages so that a years-long journal never sits in memory."""
        columns = _COLUMNS if raw else _COLUMNS.replace("raw_command", "NULL")
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT seq, {columns} FROM fiscal_entries WHERE device_id = ? AND seq > ?"
                    " ORDER BY seq LIMIT 500",
                    (self.device_id, after_seq),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _entry(row[1:])
            after_seq = rows[-1][0]

    def summaries(self, after_seq: int) -> Iterator[dict[str, Any]]:
        """The fields closings add up, for entries after ``after_seq`` (cheaper than whole payloads)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind, ts_utc, totals_json, payments_json FROM fiscal_entries"
                " WHERE device_id = ? AND seq > ? ORDER BY seq",
                (self.device_id, after_seq),
            ).fetchall()
        for seq, kind, ts_utc, totals, payments in rows:
            yield {
                "seq": seq,
                "kind": kind,
                "ts_utc": ts_utc,
                "totals": json.loads(totals),
                "payments": json.loads(payments),
            }


def _entry(row: tuple[Any, ...]) -> Entry:
    payload, prev_hash, entry_hash, signature, key_id, raw = row
    return Entry(
        payload=json.loads(payload),
        prev_hash=prev_hash,
        entry_hash=entry_hash,
        signature=signature,
        key_id=key_id,
        raw=json.loads(zlib.decompress(raw)) if raw else None,
    )
