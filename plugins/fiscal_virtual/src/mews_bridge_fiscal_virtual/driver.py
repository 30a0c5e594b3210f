"""The ``fiscal_virtual`` driver: Mews ``FiscalMachine`` commands in, signed journal receipts out.

Order of work for a command (the write order of docs/reference/fiscal.md): look the command up in the
journal (a redelivered command returns its receipt), read the bill's lines, derive the receipt,
then number, sign and commit it in one transaction, and only then print and return the Notes that
acknowledge it. A crash after the commit is harmless: :meth:`recover` (and :meth:`execute`) find
the receipt by command id and return the same Notes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from mews_bridge import (
    CommandError,
    CommandFailed,
    CommandJob,
    CommandRejected,
    DeviceConfigError,
    DeviceDriver,
    DeviceNotReady,
    InstanceContext,
    metrics,
)
from mews_bridge.inputs import describe_validation_error
from mews_bridge.mews.errors import MewsError

from .bill import (
    FiscalBill,
    FiscalCommandData,
    bill_label,
    build_draft,
    embedded_lines,
    evidence,
    fetch_bill_lines,
)
from .closing import next_day_change
from .journal import Entry
from .money import Breakdown, BreakdownError, TaxMap, format_minor, to_minor
from .options import FiscalOptions
from .printing import print_data
from .profiles.base import short_code
from .register import FiscalRegister, RegisterConfig, RegisterError

PRINT_TIMEOUT_S = 60.0
_KIND_LABELS = {
    "SALE": "Receipt",
    "REFUND": "Refund receipt",
    "STORNO": "Storno receipt",
    "TRAINING": "Training receipt",
    "NULL": "Null receipt",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def _moment(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def receipt_notes(entry: Entry, *, earlier: bool = False) -> str:
    """The Notes that acknowledge a receipt: its number and short verification code."""
    p = entry.payload
    label = _KIND_LABELS.get(entry.kind, "Receipt")
    notes = f"{label} {p['receipt_number']} · code {short_code(p['profile_code'])}"
    if p.get("corrected_receipt"):
        notes += f" · corrects {p['corrected_receipt']}"
    if earlier:
        notes += " · fiscalised earlier"
    return notes


class FiscalVirtualDriver(DeviceDriver[FiscalOptions]):
    """A tamper-evident virtual fiscal machine (RKSV or generic profile). Not a certified device."""

    name = "fiscal_virtual"
    device_type = "FiscalMachine"
    replay_safe = False
    Options: ClassVar[type[FiscalOptions]] = FiscalOptions
    command_data = FiscalCommandData
    schedule_margin_s: ClassVar[float] = 1.0
    """How long after the business day changes the scheduled closing runs."""

    def __init__(self, ctx: InstanceContext, options: FiscalOptions) -> None:
        super().__init__(ctx, options)
        self.register: FiscalRegister | None = None
        self.clock: Callable[[], datetime] = utc_now
        self._tax_map = TaxMap(options.tax_map)
        self._chain: str = "not checked yet"

    # -- lifecycle ---------------------------------------------------------------------------------

    async def setup(self) -> None:
        state_dir = self.ctx.ensure_state_dir()
        config = await self._config(state_dir)
        try:
            self.register = await asyncio.to_thread(FiscalRegister.open, state_dir, config)
        except RegisterError as exc:
            raise DeviceConfigError(str(exc)) from None
        try:
            started = await asyncio.to_thread(self.register.start, self.clock())
            await self.close_due()  # closings missed while the bridge was down
            broken = await asyncio.to_thread(self.register.check_chain)
        except BaseException:
            await self.unload()
            raise
        if started is not None:
            self.ctx.logger.info(
                "Fiscal register %s started: start receipt %s, key %s",
                config.register_id,
                started.receipt_number,
                self.register.keys.fingerprint,
            )
        if broken is not None:
            self.ctx.logger.error("The fiscal journal's hash chain is broken: %s", broken)
        checked = self.clock().isoformat(timespec="seconds")
        self._chain = f"BROKEN: {broken}" if broken else f"intact (checked {checked})"
        self.ctx.create_task(self._closing_schedule(), "fiscal closings")

    async def unload(self) -> None:
        if self.register is not None:
            await asyncio.to_thread(self.register.close)
            self.register = None

    async def diagnostics(self) -> dict[str, Any]:
        o = self.options
        info: dict[str, Any] = {
            "profile": o.profile,
            "register_id": o.register_id,
            "training": o.training,
            "receipt_printer": o.receipt_printer,
        }
        if self.register is not None:
            config = self.register.config
            info |= {
                "currency": config.currency,
                "timezone": config.timezone,
                "day_cutoff": config.day_cutoff,
                "key_fingerprint": self.register.keys.fingerprint,
                "journal": str(self.register.store.path),
                **await asyncio.to_thread(self.register.status),
            }
        return info

    async def status(self) -> dict[str, Any]:
        if self.register is None:
            return {}
        found = await asyncio.to_thread(self.register.status)
        metrics.fiscal_closings(
            self.ctx.name, _moment(found["last_z_utc"]), _moment(found["unclosed_since_utc"])
        )
        closing = f"Z #{found['last_z']} for {found['last_z_period']}" if found["last_z"] else "none yet"
        return {
            "last_receipt": found["last_receipt"],
            "last_closing": closing,
            "last_closing_at": found["last_z_utc"],
            "chain_verified": self._chain,
        }

    async def _config(self, state_dir: Path) -> RegisterConfig:
        o = self.options
        timezone, currency = o.timezone, o.currency
        if timezone is None or currency is None:
            recorded = await asyncio.to_thread(FiscalRegister.recorded_config, state_dir)
            if recorded is not None:
                timezone, currency = timezone or recorded.timezone, currency or recorded.currency
            else:
                try:
                    enterprise = await self.ctx.enterprise()
                except Exception as exc:
                    raise DeviceNotReady(
                        f"The property's time zone and currency cannot be read from Mews: {exc}"
                    ) from exc
                timezone, currency = timezone or enterprise.timezone.key, currency or enterprise.currency
        if o.profile == "rksv" and currency != "EUR":
            raise DeviceConfigError(
                f"The rksv profile records EUR, but the property's currency is {currency}."
            )
        return RegisterConfig(
            register_id=o.register_id,
            profile=o.profile,
            currency=currency,
            timezone=timezone,
            day_cutoff=o.cutoff_text,
            key_label=o.key_id,
            zda=o.zda if o.profile == "rksv" else "",
        )

    def _register(self) -> FiscalRegister:
        if self.register is None:
            raise CommandFailed(f"{self.ctx.name} is not open.")
        return self.register

    # -- commands ----------------------------------------------------------------------------------

    async def execute(self, job: CommandJob[Any]) -> str | None:
        register = self._register()
        existing = await asyncio.to_thread(register.entry_for_command, job.id)
        if existing is not None:
            return receipt_notes(existing)
        data: FiscalCommandData = job.data
        bill = data.bill
        earlier = await asyncio.to_thread(register.receipt_for_bill, bill.id)
        if earlier is not None:
            return receipt_notes(earlier, earlier=True)
        items, payments = await self._lines(bill)
        original = (
            await asyncio.to_thread(register.receipt_for_bill, bill.corrected_bill_id)
            if bill.corrected_bill_id
            else None
        )
        try:
            draft = build_draft(
                bill,
                items,
                payments,
                currency=register.config.currency,
                tax_map=self._tax_map,
                original=original,
                training=self.options.training,
                fiscalise_invoices=self.options.fiscalise_invoices,
            )
        except BreakdownError as exc:
            raise CommandRejected(str(exc)) from None
        self._check_size(bill, draft.breakdown)
        raw = evidence(job.command, data, items, payments)
        write = asyncio.ensure_future(
            asyncio.to_thread(register.record, draft, self.clock(), command_id=job.id, raw=raw)
        )
        cancelled = False
        try:
            entry, created = await asyncio.shield(write)
        except asyncio.CancelledError:
            # Signing has begun and a receipt cannot be taken back: finish it and report it.
            entry, created = await write
            cancelled = True
        notes = receipt_notes(entry, earlier=not created)
        if created:
            metrics.fiscal_receipt(self.ctx.name)
        if created and self.options.receipt_printer and not cancelled:
            notes += await self._print(entry)
        return notes

    async def recover(self, job: CommandJob[Any]) -> str | None:
        entry = await asyncio.to_thread(self._register().entry_for_command, job.id)
        if entry is not None:
            return receipt_notes(entry)
        # Not in the journal: the cut-off run never committed a receipt, so running it now is safe.
        return await self.execute(job)

    def _check_size(self, bill: FiscalBill, breakdown: Breakdown) -> None:
        """Refuse a bill larger than ``max_bill_amount``: no hotel bill is, a corrupted one may be."""
        currency = breakdown.currency
        limit = to_minor(self.options.max_bill_amount, currency)
        sizes = [
            abs(breakdown.gross),
            *(abs(b.gross) for b in breakdown.buckets.values()),
            *map(abs, breakdown.payments.values()),
        ]
        if max(sizes, default=0) > limit:
            raise CommandRejected(
                f"{bill_label(bill)} has an amount of {format_minor(max(sizes), currency)} {currency}, above the "
                f"limit of {format_minor(limit, currency)} {currency} per bill; nothing was signed. "
                "Please check the bill in Mews."
            )

    async def _lines(self, bill: FiscalBill) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        items, payments = embedded_lines(bill)
        if items is not None and payments is not None:
            return items, payments
        try:
            if not await self.ctx.mews.get_bills([bill.id]):
                raise CommandRejected(
                    f"Mews does not know {bill_label(bill)}, so there is nothing to fiscalise; "
                    "nothing was signed."
                )
            fetched_items, fetched_payments = await fetch_bill_lines(
                self.ctx.mews, bill.id, items=items is None, payments=payments is None
            )
        except CommandError:
            raise
        except ValidationError as exc:
            self.ctx.logger.warning("Mews sent lines of %s that do not fit: %s", bill.id, exc)
            raise CommandRejected(
                f"Mews sent {bill_label(bill)} with a line that cannot be fiscalised: "
                f"{describe_validation_error(exc, 'Line')} Nothing was signed."
            ) from None
        except MewsError as exc:
            raise CommandFailed(
                f"The items of {bill_label(bill)} could not be read from Mews ({exc}). Please send it again."
            ) from exc
        except Exception as exc:  # Mews' words are fit for Notes, Python's are not
            self.ctx.logger.error("Reading the lines of %s failed", bill.id, exc_info=exc)
            raise CommandFailed(
                f"The items of {bill_label(bill)} could not be read from Mews. Please send it again."
            ) from exc
        return (items if items is not None else fetched_items), (
            payments if payments is not None else fetched_payments
        )

    async def _print(self, entry: Entry) -> str:
        """Print the receipt; a failure becomes a warning in the Notes, never a lost receipt."""
        printer = self.options.receipt_printer
        assert printer is not None
        try:
            data = await asyncio.to_thread(print_data, entry, self._register().profile)
            async with asyncio.timeout(PRINT_TIMEOUT_S):
                await self.ctx.devices.run(printer, data)
        except CommandError as exc:
            return f" · not printed: {exc.notes}"
        except TimeoutError:
            return f" · not printed: {printer} did not answer"
        except Exception as exc:
            self.ctx.logger.error("Printing receipt %s failed", entry.receipt_number, exc_info=exc)
            return f" · not printed ({type(exc).__name__})"
        return ""

    # -- closings ----------------------------------------------------------------------------------

    async def close_due(self) -> list[Entry]:
        """Write the closings whose period has ended."""
        return await asyncio.to_thread(self._register().close_due, self.clock())

    async def z_report(self) -> list[Entry]:
        """A daily closing now, of whatever is open (plus any closings already due)."""
        return await asyncio.to_thread(self._register().close_day, self.clock())

    async def _closing_schedule(self) -> None:
        register = self._register()
        while True:
            now = self.clock()
            change = next_day_change(now, register.tz, register.config.cutoff)
            await asyncio.sleep((change - now).total_seconds() + self.schedule_margin_s)
            try:
                await self.close_due()
            except Exception as exc:
                # The next receipt writes the closing anyway; keep the schedule alive.
                self.ctx.logger.error("The scheduled fiscal closing failed", exc_info=exc)
