"""``mews-bridge fiscal``: export, offline verification, reprints and the daily closing on demand.

``export``, ``reprint`` and ``z-report`` find the device's state directory from the bridge settings
(``--device`` when several fiscal machines are configured) or take ``--state-dir``; ``verify`` needs
only the export file. Run them as the bridge's user: they open the same journal and keys.

Printing is the running bridge's job (it holds the printer): ``reprint`` and ``z-report --print``
queue the printout in the journal, and wait a little for the bridge to print it.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .journal import Entry
    from .register import FiscalRegister

DRIVER = "fiscal_virtual"


def _now() -> datetime:
    return datetime.now(UTC)


def _state_dir(device: str | None, state_dir: Path | None) -> Path:
    if state_dir is not None:
        return state_dir
    from mews_bridge import CliState

    state = click.get_current_context().find_object(CliState)
    if state is None:
        raise click.UsageError("No bridge settings are loaded: give --state-dir.")
    entry = state.entry(DRIVER, device, option="--device, or give --state-dir")
    assert entry is not None
    return state.instance_state_dir(entry)


def _open(device: str | None, state_dir: Path | None) -> FiscalRegister:
    from .register import FiscalRegister, RegisterError

    try:
        return FiscalRegister.open(_state_dir(device, state_dir))
    except RegisterError as exc:
        raise click.ClickException(str(exc)) from None


_device = click.option("--device", help=f"Name of the configured {DRIVER} device (from the bridge settings).")
_state = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The device's state directory (instead of the bridge settings).",
)


@click.group("fiscal")
def fiscal() -> None:
    """The virtual fiscal machine's journal: export, verify, daily closing."""


@fiscal.command("export")
@_device
@_state
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The ZIP to write (default: here).",
)
@click.option(
    "--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First business day (property time)."
)
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last business day (property time).")
def export_command(
    device: str | None,
    state_dir: Path | None,
    output: Path | None,
    start: datetime | None,
    end: datetime | None,
) -> None:
    """Write the journal, or the business days --from to --to, as a signed ZIP (with the RKSV DEP and
    crypto container). A period includes the month and year closings that end in it."""
    from .export import ExportError, default_export_name, write_export

    register = _open(device, state_dir)
    try:
        now = _now()
        period = None
        if start or end:
            first = start.date() if start else date.min
            period = (first, end.date() if end else _today(register, now))
        try:
            summary = write_export(
                register, output or Path(default_export_name(register.config.register_id, now)), now, period
            )
        except ExportError as exc:
            raise click.ClickException(f"Nothing exported: {exc}.") from None
        click.echo(
            f"Wrote {summary.path}: {summary.entries} records, {summary.receipts} receipts, "
            f"last seq {summary.last_seq}."
        )
        if register.config.profile == "rksv":
            click.echo("It holds the AES turnover key (for the BMF Prüftool): keep it confidential.")
    finally:
        register.close()


def _today(register: FiscalRegister, now: datetime) -> date:
    from .closing import business_day

    return business_day(now, register.tz, register.config.cutoff)


@fiscal.command("verify")
@click.argument("export", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def verify_command(export: Path) -> None:
    """Check an export offline, say what it covers and print the figures an auditor compares; exit 1
    naming the first broken record."""
    from .money import format_minor
    from .profiles import PROFILES
    from .verify import VerificationError, verify_export

    try:
        report = verify_export(export)
    except VerificationError as exc:
        raise click.ClickException(f"{export} is NOT intact: {exc}") from None
    period = report.period
    covers = (
        f"business days {period['from']} to {period['to']} (records {period['first_seq']} to {period['last_seq']})"
        if period
        else f"the whole journal (records 1 to {report.last_seq})"
    )
    receipts = f"{report.receipts}"
    if report.first_receipt:
        receipts += f", numbers {report.first_receipt} to {report.last_receipt}"
    closings = f"{report.closings}"
    if report.closings_not_recomputed:
        closings += f" ({report.closings_not_recomputed} begun before this export: numbering and counter checked only)"
    click.echo(f"{export} is intact: register {report.register_id} ({report.profile}), {covers}.")
    click.echo(f"  Records:  {report.entries}")
    click.echo(f"  Receipts: {receipts}")
    turnover = format_minor(report.turnover, report.currency, PROFILES[report.profile].decimal_separator)
    click.echo(f"  Turnover counter: {turnover} {report.currency}")
    click.echo(f"  Closings: {closings}")
    click.echo(f"Signing key fingerprint {report.key_fingerprint}: compare it with the registered one.")


_wait = click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the running bridge to print it.",
)


@fiscal.command("reprint")
@click.argument("number")
@_device
@_state
@_wait
def reprint_command(number: str, device: str | None, state_dir: Path | None, wait: float) -> None:
    """Print receipt NUMBER again, marked as a copy (recorded in the journal; not a new receipt)."""
    from .register import RegisterError

    register = _open(device, state_dir)
    try:
        try:
            entry = register.reprint(number, _now())
        except RegisterError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Reprint of {entry.payload['reprint']['receipt_number']} recorded (record {entry.seq}).")
        _await_print(register, [entry.seq], wait)
    finally:
        register.close()


@fiscal.command("z-report")
@_device
@_state
@click.option("--print", "print_", is_flag=True, help="Print the closing on the receipt printer.")
@_wait
def z_report_command(device: str | None, state_dir: Path | None, print_: bool, wait: float) -> None:
    """Close the day now: a signed Z closing of everything since the last one."""
    from .journal import CLOSING_KINDS

    register = _open(device, state_dir)
    try:
        if print_:
            register.print_kinds = CLOSING_KINDS
        written = register.close_day(_now())
        if not written:
            z = register.status()["last_z"]
            click.echo("Nothing to close: no records since " + (f"Z #{z}." if z else "the start."))
        for entry in written:
            click.echo(describe_closing(entry, register))
        if print_ and written:
            _await_print(register, [entry.seq for entry in written], wait)
    finally:
        register.close()


def _await_print(register: FiscalRegister, seqs: list[int], wait: float) -> None:
    """Wait for the running bridge to print the queued printouts, and say how it went."""
    deadline = time.monotonic() + wait
    while True:
        jobs = [register.store.print_job(seq) for seq in seqs]
        if all(job is not None and job.state == "printed" for job in jobs):
            click.echo("Printed.")
            return
        if time.monotonic() >= deadline:
            errors = sorted({job.error for job in jobs if job is not None and job.error})
            why = f" (last attempt: {'; '.join(errors)})" if errors else ""
            click.echo(
                f"Not printed yet{why}: the bridge prints it when it runs and its receipt printer works."
            )
            return
        time.sleep(0.2)


def describe_closing(entry: Entry, register: FiscalRegister) -> str:
    """A closing in a few lines, for the terminal."""
    from .money import format_minor

    closing, currency = entry.payload["closing"], entry.payload["currency"]
    sep = register.profile.decimal_separator

    def amount(minor: int) -> str:
        return format_minor(minor, currency, sep)

    number = f" {entry.receipt_number}" if entry.receipt_number else ""
    lines = [f"{closing['type']} #{closing['number']} for {closing['period']} (seq {entry.seq}{number})"]
    counts = ", ".join(f"{n} {kind}" for kind, n in closing["counts"].items())
    lines.append(f"  records: {counts or 'none'}")
    for bucket, t in closing["totals"].items():
        lines.append(f"  {bucket}: {amount(t['gross'])} (net {amount(t['net'])}, tax {amount(t['tax'])})")
    total = sum(t["gross"] for t in closing["totals"].values())
    lines.append(f"  total: {amount(total)} {currency}")
    for method, paid in closing["payments"].items():
        lines.append(f"  {method}: {amount(paid)}")
    return "\n".join(lines)
