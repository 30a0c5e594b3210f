"""The ``fiscal_virtual`` driver: Mews ``FiscalMachine`` commands in, signed journal receipts out.

Order of work for a command (the write order of docs/reference/fiscal.md): look the command up in the
journal (a redelivered command returns its receipt), read the bill's lines, derive the receipt,
then number, sign and commit it in one transaction, and only then print and return the Notes that
acknowledge it. A crash after the commit is harmless: :meth:`recover` (and :meth:`execute`) find
the receipt by command id and return the same Notes.

Nothing is left unprinted: the receipt's printout is queued in the same transaction that records it,
and its state (pending, printing, printed, failed, unknown) is kept beside the journal. A printer
that fails, a restart in the middle of a print, or Mews cancelling the command leaves the printout
in doubt; the print queue prints it at the next start, when the printer works again (after any
successful print, and every :attr:`FiscalVirtualDriver.print_retry_s`), marked "COPY" when an
earlier attempt may have reached paper. Reprints and closings asked for on the command line are
queued in the journal the same way and picked up within :attr:`FiscalVirtualDriver.print_poll_s`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
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
    MewsError,
    describe_validation_error,
    metrics,
)

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
from .journal import CLOSING_KINDS, REPRINT, Entry, PrintJob
from .keys import KeyFileError
from .layout import PrintedReceipt, ReceiptStyle, babel_locale, closing_report, receipt
from .money import Breakdown, BreakdownError, TaxMap, format_minor, to_minor
from .opening import open_register
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
PRINTED_KINDS = frozenset({"START", "SALE", "REFUND", "STORNO", "TRAINING", "NULL", "YEAR"})
"""Printed whenever a receipt printer is set: every receipt, the start receipt (to be checked with
the BMF app) and the yearly null receipt (RKSV: printed and checked)."""


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
    print_retry_s: ClassVar[float] = 60.0
    """How often printouts in doubt are tried again while the printer fails."""
    print_poll_s: ClassVar[float] = 2.0
    """How often the journal is checked for printouts queued from the command line."""

    def __init__(self, ctx: InstanceContext, options: FiscalOptions) -> None:
        super().__init__(ctx, options)
        self.register: FiscalRegister | None = None
        self.clock: Callable[[], datetime] = utc_now
        self._tax_map = TaxMap(options.tax_map)
        self._chain: str = "not checked yet"
        self._style: ReceiptStyle | None = None
        self._print_lock = asyncio.Lock()
        self._print_wanted = asyncio.Event()
        self._retry_at = 0.0
        """Event-loop time before which printouts that failed are not tried again (unless wanted)."""
        self._background: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def setup(self) -> None:
        state_dir = self.ctx.ensure_state_dir()
        config = await self._config(state_dir)
        kinds: frozenset[str] = frozenset()
        if self.options.receipt_printer:
            kinds = PRINTED_KINDS | (CLOSING_KINDS if self.options.print_closings else frozenset())
        try:
            opened = await open_register(state_dir, config, self.clock(), kinds, self.ctx.logger)
        except RegisterError as exc:
            raise DeviceConfigError(str(exc)) from None
        self.register = opened.register
        try:
            await self.close_due()  # closings missed while the bridge was down
            broken = await asyncio.to_thread(self.register.check_chain)
            cut_off = await asyncio.to_thread(self.register.store.prints_cut_off)
        except BaseException:
            await self.unload()
            raise
        if cut_off:
            self.ctx.logger.warning(
                "%d receipt print(s) were cut off by a restart: printing them as copies", cut_off
            )
        if opened.started is not None:
            self.ctx.logger.info(
                "Fiscal register %s started: start receipt %s, key %s",
                config.register_id,
                opened.started,
                self.register.keys.fingerprint,
            )
        if broken is not None:
            self.ctx.logger.error("The fiscal journal's hash chain is broken: %s", broken)
        checked = self.clock().isoformat(timespec="seconds")
        self._chain = f"BROKEN: {broken}" if broken else f"intact (checked {checked})"
        self._spawn(self._closing_schedule(), "fiscal closings")
        if self.options.receipt_printer:
            self._spawn(self._print_queue(), "receipt print queue")

    async def unload(self) -> None:
        # Stop the schedule and the printing before the journal closes under them (a print cut off
        # here stays "printing" and comes out as a copy at the next start).
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.register is not None:
            await asyncio.to_thread(self.register.close)
            self.register = None

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = self.ctx.create_task(coroutine, name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

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
                "prints_in_doubt": [
                    {"seq": job.seq, "state": job.state, "attempts": job.attempts, "error": job.error}
                    for job in await asyncio.to_thread(self.register.store.prints_in_doubt)
                ],
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
            try:
                entry, created = await asyncio.shield(write)
            except asyncio.CancelledError:
                # Signing has begun and a receipt cannot be taken back: finish it and report it.
                entry, created = await write
                cancelled = True
        except KeyFileError as exc:  # the key read at the first signature (checked at set-up)
            self.ctx.logger.error("No receipt was signed: %s", exc)
            raise CommandFailed(
                f"{self.ctx.name} cannot sign receipts: its signing key cannot be used. "
                "The bridge log says why."
            ) from None
        notes = receipt_notes(entry, earlier=not created)
        if created:
            metrics.fiscal_receipt(self.ctx.name)
        if created and self.options.receipt_printer:
            # The printout was queued with the receipt; print it now, in a task of its own that a
            # cancelled command does not stop (the receipt exists, so it is printed).
            printing = self._spawn(
                self._print(entry.seq, again=False), f"print receipt {entry.receipt_number}"
            )
            if not cancelled:
                notes += (await asyncio.shield(printing))[1]
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

    # -- printing ----------------------------------------------------------------------------------

    async def _print(self, seq: int, *, again: bool) -> tuple[bool | None, str]:
        """Print the queued printout of entry ``seq`` unless it is on paper already, or was tried
        already and not ``again``. Whether it printed (None: not tried now), and what to add to the
        Notes (a warning, never an error: the receipt stays either way)."""
        printer = self.options.receipt_printer
        assert printer is not None
        register = self._register()
        async with self._print_lock:
            job = await asyncio.to_thread(register.store.print_job, seq)
            if job is None or job.state == "printed":
                return True, ""
            if job.state != "pending" and not again:
                return None, f" · not printed: {job.error}"
            try:
                data = await asyncio.to_thread(print_data, await self._printout(job))
            except Exception as exc:
                self.ctx.logger.error("Receipt print of record %s cannot be laid out", seq, exc_info=exc)
                error = "the receipt could not be laid out; the bridge log has the details"
                await asyncio.to_thread(register.store.set_print_state, seq, "failed", error)
                return False, f" · not printed: {error}"
            await asyncio.to_thread(register.store.set_print_state, seq, "printing")
            try:
                async with asyncio.timeout(PRINT_TIMEOUT_S):
                    warning = await self.ctx.devices.run(printer, data)
            except (CommandError, Exception) as exc:
                if isinstance(exc, CommandError):
                    state, error = "failed", exc.notes
                elif isinstance(exc, TimeoutError):
                    state, error = "unknown", f"{printer} did not answer"
                else:
                    self.ctx.logger.error("Printing record %s failed", seq, exc_info=exc)
                    state, error = "unknown", f"{printer} failed unexpectedly; the bridge log has the details"
                await asyncio.to_thread(register.store.set_print_state, seq, state, error)
                self._retry_at = asyncio.get_running_loop().time() + self.print_retry_s
                return False, f" · not printed: {error}"
            await asyncio.to_thread(register.store.set_print_state, seq, "printed")
        self._print_wanted.set()  # the printer works: print what is in doubt
        return True, f" · {warning}" if warning else ""

    async def _printout(self, job: PrintJob) -> PrintedReceipt:
        """What to print for a queued printout: a receipt, a copy, or a closing report."""
        store = self._register().store
        entry = await asyncio.to_thread(store.by_seq, job.seq)
        assert entry is not None
        style = await self._receipt_style()
        p = entry.payload
        if entry.kind == REPRINT:
            original = await asyncio.to_thread(store.by_seq, p["reprint"]["seq"])
            assert original is not None
            return receipt(original.payload, style, copy=f"Reprinted {p['ts_local'].replace('T', ' ')}")
        copy_note = "Printed again after a failed print" if job.maybe_on_paper else None
        if entry.kind == "Z":
            return PrintedReceipt(closing_report(p, style, copy=copy_note), None, [])
        printed = receipt(p, style, copy=copy_note)
        if entry.kind in CLOSING_KINDS:  # the monthly or yearly null receipt carries its closing
            closing = closing_report(p, style, header=False)
            return PrintedReceipt(printed.top, printed.qr, closing + printed.bottom)
        return printed

    async def _receipt_style(self) -> ReceiptStyle:
        """The receipt's header from Mews' configuration (read once), and the options."""
        if self._style is not None:
            return self._style
        o, profile = self.options, self._register().profile
        try:
            enterprise = await self.ctx.enterprise()
        except Exception as exc:  # print without the property's details rather than not at all
            self.ctx.logger.warning("The property's name and address cannot be read from Mews: %s", exc)
            enterprise = None
        header = o.receipt_header
        if header is None and enterprise is not None:
            header = [enterprise.name, *enterprise.address]
        style = ReceiptStyle(
            header=tuple(line for line in header or () if line),
            tax_identifier=o.tax_identifier or (enterprise.tax_identifier if enterprise else None),
            footer=tuple(o.receipt_footer),
            columns=o.columns,
            locale=babel_locale(enterprise.language_code if enterprise else None),
            kind_words={
                kind: words for kind in PRINTED_KINDS | CLOSING_KINDS if (words := profile.kind_label(kind))
            },
            bucket_labels=profile.bucket_labels,
            bucket_order=profile.buckets,
            qr_code=profile.has_qr_code,
        )
        if enterprise is not None or o.receipt_header is not None:
            self._style = style
        return style

    async def _print_queue(self) -> None:
        """Print what is in doubt: at start, when the printer works again, and what the CLI queued."""
        loop = asyncio.get_running_loop()
        while True:
            wanted = self._print_wanted.is_set()
            self._print_wanted.clear()
            # Printouts that failed wait for the printer to come back (or for the next retry).
            again = wanted or loop.time() >= self._retry_at
            for job in await asyncio.to_thread(self._register().store.prints_in_doubt):
                printed, _ = await self._print(job.seq, again=again)
                if printed is False:
                    break
            try:
                async with asyncio.timeout(self.print_poll_s):
                    await self._print_wanted.wait()
            except TimeoutError:
                pass

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
