"""One fiscal register: numbering, turnover counter, chaining, signing and closings over the journal.

Everything that decides a number, a timestamp or a chain link happens inside one ``BEGIN IMMEDIATE``
transaction that also inserts the entry, so a crash leaves either the whole entry or nothing, and a
second writer (the CLI's ``z-report`` while the bridge runs) simply waits. Due closings are written
in the same transaction just before the first entry of a new business day.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .closing import ClosingAggregate, business_day, month_key, months_between
from .journal import (
    GENESIS_HASH,
    JOURNAL_FILE,
    RECEIPT_KINDS,
    REPRINT,
    TURNOVER_KINDS,
    Entry,
    JournalStore,
    compute_entry_hash,
    raw_digest,
)
from .keys import KeyMaterial, deferred_keys, load_keys
from .money import Breakdown
from .profiles import ReceiptData, make_profile
from .profiles.rksv import aes_key_check_value

log = logging.getLogger(__name__)
PAYLOAD_VERSION = 1


class RegisterError(Exception):
    """The register cannot be opened as configured; the message says what to do."""


@dataclass(frozen=True)
class RegisterConfig:
    """What identifies a register. Recorded in its start entry and fixed for the journal's life."""

    register_id: str
    profile: str
    currency: str
    timezone: str
    day_cutoff: str = "00:00"
    key_label: str | None = None
    """RKSV field 11 (certificate serial or closed-system key id); generic: the key fingerprint."""
    zda: str = "AT0"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RegisterConfig:
        return cls(**data)

    @property
    def cutoff(self) -> time:
        return time.fromisoformat(self.day_cutoff)


@dataclass(frozen=True)
class ReceiptDraft:
    """A receipt to record, as :mod:`.bill` derives it from a Mews bill."""

    kind: str
    breakdown: Breakdown
    bill: dict[str, Any] | None = None
    corrected_receipt: str | None = None
    note: str | None = None
    lines: list[dict[str, Any]] | None = None
    """What the printed receipt lists: name, quantity, unit price, amount and bucket per line."""


@dataclass
class _Chain:
    """The tip of the journal, read at the start of each write transaction."""

    seq: int
    entry_hash: str
    ts: datetime
    receipt_counter: int
    receipt_code: str | None
    turnover: int


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def receipt_number(register_id: str, counter: int) -> str:
    return f"{register_id}-{counter}"


class FiscalRegister:
    """The register of one configured fiscal machine, over its journal in ``state_dir``."""

    def __init__(self, store: JournalStore, keys: KeyMaterial, config: RegisterConfig) -> None:
        self.store = store
        self.keys = keys
        self.config = config
        self.print_kinds: frozenset[str] = frozenset()
        """Kinds of entry queued for printing as they are written (in the same transaction)."""
        self.tz = ZoneInfo(config.timezone)
        self.profile = make_profile(
            config.profile,
            config.register_id,
            config.key_label or keys.fingerprint,
            keys.aes_key if config.profile == "rksv" else None,
            config.zda,
        )

    @classmethod
    def open(
        cls, state_dir: Path, config: RegisterConfig | None = None, *, defer_keys: bool = False
    ) -> FiscalRegister:
        """Open the register; with ``config`` (the driver) make keys on first start and check the
        options against the journal, without it (the CLI) take everything from the journal.

        ``defer_keys`` (a journal that has started, its keys already checked by
        :mod:`.opening`): the signing key is read and checked at the first signature instead of now."""
        path = state_dir / JOURNAL_FILE
        if config is None and not path.exists():
            raise RegisterError(f"There is no fiscal journal in {state_dir}.")
        store = JournalStore(path)
        try:
            start = store.first()
            recorded = RegisterConfig.from_json(start.payload["start"]["config"]) if start else None
            wanted = config or recorded
            if wanted is None:
                raise RegisterError(f"The fiscal journal in {state_dir} has no start entry.")
            with_aes = wanted.profile == "rksv"
            try:
                if defer_keys and start is not None:
                    public_key = start.payload["start"]["public_key"]
                    keys = deferred_keys(state_dir, with_aes=with_aes, public_key_b64=public_key)
                else:
                    keys = load_keys(state_dir, with_aes=with_aes, create=start is None)
            except Exception as exc:
                raise RegisterError(f"The register's keys cannot be used: {exc}") from None
            if config is not None and config.key_label is None:
                wanted = RegisterConfig(**{**config.to_json(), "key_label": keys.fingerprint})
            if start is not None and recorded is not None:
                _check_same(recorded, wanted, state_dir)
                if start.payload["start"]["public_key"] != keys.public_key_b64:
                    raise RegisterError(
                        f"The signing key in {state_dir} is not the one this journal started with."
                    )
            return cls(store, keys, wanted)
        except BaseException:
            store.close()
            raise

    @staticmethod
    def recorded_config(state_dir: Path) -> RegisterConfig | None:
        """The settings the journal in ``state_dir`` started with, if it exists."""
        path = state_dir / JOURNAL_FILE
        if not path.exists():
            return None
        store = JournalStore(path)
        try:
            start = store.first()
        finally:
            store.close()
        return RegisterConfig.from_json(start.payload["start"]["config"]) if start else None

    def close(self) -> None:
        self.store.close()

    # -- reading -----------------------------------------------------------------------------------

    def entry_for_command(self, command_id: str) -> Entry | None:
        return self.store.by_command(command_id)

    def receipt_for_bill(self, bill_id: str) -> Entry | None:
        return self.store.by_bill(bill_id)

    def receipt_by_number(self, number: str) -> Entry | None:
        """A receipt by its number (``AT-REG1-42``, or just ``42``)."""
        counter = number.removeprefix(f"{self.config.register_id}-")
        return self.store.by_receipt_counter(int(counter)) if counter.isdigit() else None

    def status(self) -> dict[str, Any]:
        last, receipt, z = self.store.last(), self.store.last_receipt(), self.store.last_of_kind("Z")
        return {
            "entries": last.seq if last else 0,
            "last_receipt": receipt.receipt_number if receipt else None,
            "last_entry_utc": last.payload["ts_utc"] if last else None,
            "last_z": z.payload["z_number"] if z else None,
            "last_z_period": z.payload["closing"]["period"] if z else None,
            "last_z_utc": z.payload["ts_utc"] if z else None,
            "unclosed_since_utc": (o := self.store.first_open(z.seq if z else 0)) and o.payload["ts_utc"],
        }

    def check_chain(self) -> str | None:
        """Walk the whole hash chain: every entry links to the one before and hashes to what it
        records. None when intact, else where it breaks."""
        prev_hash, seq = GENESIS_HASH, 0
        for entry in self.store.entries():
            if entry.seq != seq + 1 or entry.prev_hash != prev_hash:
                return f"entry {entry.seq} does not follow entry {seq}"
            if compute_entry_hash(entry.prev_hash, entry.payload) != entry.entry_hash:
                return f"entry {entry.seq} does not match its hash"
            prev_hash, seq = entry.entry_hash, entry.seq
        return None

    # -- writing -----------------------------------------------------------------------------------

    def start(self, now: datetime) -> Entry | None:
        """Write the start entry (RKSV Startbeleg) if the journal is empty; return it if written."""
        with self.store.write():
            if self.store.last() is not None:
                return None
            start: dict[str, Any] = {
                "config": self.config.to_json(),
                "public_key": self.keys.public_key_b64,
                "key_fingerprint": self.keys.fingerprint,
            }
            if self.config.profile == "rksv":
                start["aes_key_check"] = aes_key_check_value(self.keys.aes_key)
            chain = _Chain(0, GENESIS_HASH, now.astimezone(UTC).replace(microsecond=0), 0, None, 0)
            return self._append(chain, now, "START", extra={"start": start})

    def record(
        self, draft: ReceiptDraft, now: datetime, *, command_id: str | None, raw: dict[str, Any] | None
    ) -> tuple[Entry, bool]:
        """Record a receipt once: an entry that already exists for the command or the bill is returned
        instead (``created`` False). Closings that fell due are written first."""
        with self.store.write():
            existing = (command_id and self.store.by_command(command_id)) or (
                draft.bill and self.store.by_bill(draft.bill["id"])
            )
            if existing:
                return existing, False
            chain = self._chain()
            self._write_due(chain, now)
            entry = self._append(
                chain,
                now,
                draft.kind,
                breakdown=draft.breakdown,
                command_id=command_id,
                raw=raw,
                extra={
                    "bill": draft.bill,
                    "corrected_receipt": draft.corrected_receipt,
                    "note": draft.note,
                    "lines": draft.lines,
                },
            )
            return entry, True

    def reprint(self, number: str, now: datetime) -> Entry:
        """Record that receipt ``number`` is printed again (a signed record, not a receipt) and queue
        the copy for the printer."""
        with self.store.write():
            original = self.receipt_by_number(number)
            if original is None:
                raise RegisterError(f"There is no receipt {number} in this journal.")
            chain = self._chain()
            self._write_due(chain, now)
            reprint = {"receipt_number": original.receipt_number, "seq": original.seq}
            entry = self._append(chain, now, REPRINT, extra={"reprint": reprint})
            self.store.queue_print(entry.seq, copy=True)
            return entry

    def close_due(self, now: datetime) -> list[Entry]:
        """Write the closings whose period has ended (scheduled, and at start-up for missed ones)."""
        with self.store.write():
            return self._write_due(self._chain(), now)

    def close_day(self, now: datetime) -> list[Entry]:
        """A Z report on demand: closes whatever is open now (after any closings already due)."""
        with self.store.write():
            chain = self._chain()
            written = self._write_due(chain, now)
            open_entry = self.store.last_open(self._last_seq("Z"))
            if open_entry is not None:
                written.append(self._close("Z", chain, now, open_entry.payload["business_day"]))
            return written

    def _chain(self) -> _Chain:
        last, receipt = self.store.last(), self.store.last_receipt()
        if last is None or receipt is None:
            raise RegisterError("The fiscal journal has not been started.")
        return _Chain(
            seq=last.seq,
            entry_hash=last.entry_hash,
            ts=parse_ts(last.payload["ts_utc"]),
            receipt_counter=int(receipt.payload["receipt_counter"]),
            receipt_code=receipt.profile_code,
            turnover=int(last.payload["turnover_counter"]),
        )

    def _last_seq(self, kind: str) -> int:
        entry = self.store.last_of_kind(kind)
        return entry.seq if entry else 0

    def _write_due(self, chain: _Chain, now: datetime) -> list[Entry]:
        today = business_day(max(now, chain.ts), self.tz, self.config.cutoff)
        written = []
        open_entry = self.store.last_open(self._last_seq("Z"))
        if open_entry is not None and date.fromisoformat(open_entry.payload["business_day"]) < today:
            written.append(self._close("Z", chain, now, open_entry.payload["business_day"]))
        if "MONTH" in self.profile.closings:
            last_month = self.store.last_of_kind("MONTH")
            if last_month is not None:
                closed = last_month.payload["closing"]["period"]
            else:  # nothing closed yet: the month before the register started
                first = self.store.first()
                assert first is not None
                closed = month_key(
                    date.fromisoformat(first.payload["business_day"]).replace(day=1) - timedelta(1)
                )
            for month in months_between(closed, month_key(today)):
                written.append(self._close("MONTH", chain, now, month))
                if "YEAR" in self.profile.closings and month.endswith("-12"):
                    written.append(self._close("YEAR", chain, now, month[:4]))
        return written

    def _close(self, kind: str, chain: _Chain, now: datetime, period: str) -> Entry:
        previous = self.store.last_of_kind(kind)
        aggregate = ClosingAggregate(int(previous.payload["turnover_counter"]) if previous else 0)
        for item in self.store.summaries(previous.seq if previous else 0):
            aggregate.add(item["seq"], item["kind"], item["ts_utc"], item["totals"], item["payments"])
        number = int(previous.payload["closing"]["number"]) + 1 if previous else 1
        closing = {"type": kind, "number": number, "period": period, **aggregate.result(chain.turnover)}
        entry = self._append(
            chain, now, kind, extra={"closing": closing, "z_number": number if kind == "Z" else None}
        )
        log.info("Fiscal %s closing #%s for %s written (seq %s)", kind, number, period, entry.seq)
        return entry

    def _append(
        self,
        chain: _Chain,
        now: datetime,
        kind: str,
        *,
        breakdown: Breakdown | None = None,
        command_id: str | None = None,
        raw: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Entry:
        """Number, time, chain, sign and insert one entry; advances ``chain`` in place."""
        breakdown = breakdown or Breakdown(self.config.currency)
        flags = []
        moment = now.astimezone(UTC).replace(microsecond=0)
        if moment < chain.ts:
            # The clock went back: never back-date, record the entry at the last time and say so.
            log.warning("The clock is behind the fiscal journal's last entry; using %s", format_ts(chain.ts))
            flags.append("clock_behind")
            moment = chain.ts
        local = moment.astimezone(self.tz)
        turnover = chain.turnover + (breakdown.gross if kind in TURNOVER_KINDS else 0)
        counter = chain.receipt_counter + 1 if kind in RECEIPT_KINDS else None
        payload: dict[str, Any] = {
            "v": PAYLOAD_VERSION,
            "register_id": self.config.register_id,
            "seq": chain.seq + 1,
            "kind": kind,
            "ts_utc": format_ts(moment),
            "ts_local": local.strftime("%Y-%m-%dT%H:%M:%S"),
            "tz": self.config.timezone,
            "business_day": business_day(moment, self.tz, self.config.cutoff).isoformat(),
            "currency": self.config.currency,
            "totals": breakdown.totals_json(),
            "payments": dict(sorted(breakdown.payments.items())),
            "receipt_counter": counter,
            "receipt_number": receipt_number(self.config.register_id, counter) if counter else None,
            "turnover_counter": turnover,
            "z_number": None,
            "bill": None,
            "source_command_id": command_id,
            "corrected_receipt": None,
            "note": None,
            "lines": None,
            "reprint": None,
            "closing": None,
            "start": None,
            "flags": flags,
            "raw_sha256": raw_digest(raw) if raw is not None else None,
            "profile": self.config.profile,
            "profile_code": None,
            **(extra or {}),
        }
        if counter is not None:
            receipt = ReceiptData(
                self.config.register_id,
                counter,
                kind,
                local,
                self.config.currency,
                breakdown.buckets,
                turnover,
            )
            payload["profile_code"] = self.profile.sign(receipt, chain.receipt_code, self.keys)
        entry_hash = compute_entry_hash(chain.entry_hash, payload)
        signature = base64.b64encode(self.keys.sign(bytes.fromhex(entry_hash))).decode()
        entry = Entry(payload, chain.entry_hash, entry_hash, signature, self.keys.fingerprint, raw)
        self.store.insert(entry)
        if kind in self.print_kinds:
            self.store.queue_print(entry.seq)
        chain.seq, chain.entry_hash, chain.ts, chain.turnover = entry.seq, entry_hash, moment, turnover
        if counter is not None:
            chain.receipt_counter, chain.receipt_code = counter, payload["profile_code"]
        return entry


def _check_same(recorded: RegisterConfig, wanted: RegisterConfig, state_dir: Path) -> None:
    old, new = recorded.to_json(), wanted.to_json()
    changed = [f"{key} {old[key]!r} → {new[key]!r}" for key in old if old[key] != new[key]]
    if changed:
        raise RegisterError(
            f"The fiscal journal in {state_dir} was started with other settings ({'; '.join(changed)}). "
            "A register cannot change them: restore the old options, or configure a new device "
            "(a new journal)."
        )
