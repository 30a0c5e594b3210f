"""``mews-bridge pbx``: what to write in the options (``setup``, with the service's products for
``*51*`` articles), room phones brought in line with Mews now (``resync``), what became of the calls
and articles (``charges``), wake-up calls (``wakeup``, ``wakeups``) and a guest's call credit
(``credit``).

All read the bridge settings; ``charges``, ``wakeups`` and ``credit`` read the service's store in the
bridge's journal, so run them as the bridge's user. They may run while the bridge does; ``wakeup``
needs it running.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

import click

from mews_bridge import ServiceEntry

from .charges import STATES

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager
    from zoneinfo import ZoneInfo

    from mews_bridge import CliState, KeyValueStore, Settings

    from .actions import AmiClient
    from .charges import Charge
    from .options import AsteriskPbxOptions
    from .wakeups import WakeUp

    StoreOpener = AbstractAsyncContextManager[KeyValueStore | None]

SERVICE = "asterisk_pbx"


def _cli_state() -> CliState:
    from mews_bridge import CliState

    state = click.get_current_context().find_object(CliState)
    if state is None:
        raise click.UsageError("No bridge settings are loaded.")
    return state


def _entry(name: str | None, *, required: bool) -> tuple[Settings, ServiceEntry | None]:
    state = _cli_state()
    entry = state.entry(SERVICE, name, option="--service", required=required)
    assert entry is None or isinstance(entry, ServiceEntry)
    return state.settings, entry


def _store_of(name: str | None) -> StoreOpener:
    """The service's store in the bridge's journal (None before the bridge first ran)."""
    _, entry = _entry(name, required=True)
    assert entry is not None
    return _cli_state().open_store(entry)


_service = click.option("--service", "name", help=f"Name of the configured {SERVICE} service.")


@click.group("pbx")
def pbx() -> None:
    """The Asterisk PBX service: Mews set-up and call charges."""


# setup


@pbx.command("setup")
@_service
def setup_command(name: str | None) -> None:
    """List the property's services, accounting categories and rooms, and check the PBX link."""
    settings, entry = _entry(name, required=False)
    options = _options(entry) if entry else None
    asyncio.run(_setup(settings, options))


def _options(entry: ServiceEntry) -> AsteriskPbxOptions | None:
    from pydantic import ValidationError

    from mews_bridge import format_validation_error

    from .options import AsteriskPbxOptions

    try:
        return AsteriskPbxOptions.model_validate(entry.options)
    except ValidationError as exc:
        click.echo(f"The options of {entry.name!r} are not valid yet:", err=True)
        click.echo(format_validation_error(exc, prefix="  options"), err=True)
        return None


# One section of the report after another, each a short loop; it reads best top to bottom.
async def _setup(settings: Settings, options: AsteriskPbxOptions | None) -> None:  # noqa: C901
    from datetime import UTC, datetime

    from mews_bridge import MewsClient, MewsError

    from .charges import load_tax_rates
    from .service import service_refusal

    async with MewsClient(settings.mews, retry_budget_s=10) as mews:
        try:
            enterprise = await mews.enterprise()
            taxes = await load_tax_rates(mews, enterprise)
            services = await mews.get_services()
            categories = await mews.get_accounting_categories()
            resources = await mews.get_resources()
        except MewsError as exc:
            raise click.ClickException(f"Could not reach Mews: {exc}") from None
        try:
            departments: list[dict[str, object]] | None = await mews.pages(
                "departments/getAll", {}, "Departments"
            )
        except MewsError:
            departments = None  # optional: only the wake-up task's department needs them
        products: list[dict[str, object]] = []
        if options is not None and any(s.id == options.service_id for s in services):
            try:
                products = await mews.pages(
                    "products/getAll", {"ServiceIds": [options.service_id]}, "Products"
                )
            except MewsError as exc:
                click.echo(f"Mews did not list the service's products: {exc}", err=True)
    click.echo(
        f"Property: {enterprise.name} ({enterprise.currency}, {enterprise.pricing} prices, "
        f"time zone {enterprise.timezone.key}, tax environment {enterprise.tax_environment_code})"
    )
    click.echo(f"Standard tax code: {taxes.explain(datetime.now(UTC))}")
    if options is not None and options.tax_code is not None:
        known = (
            "" if options.tax_code in taxes.known else " (Mews does not know it: the service will not start)"
        )
        click.echo(f"Configured tax_code: {options.tax_code}{known}")

    configured = options.service_id if options else None
    click.echo("\nServices (option service_id; telephone charges belong under an Additional one):")
    for service in sorted(services, key=lambda s: (service_refusal(s) is not None, s.display_name)):
        kind = (service.data or {}).get("Discriminator", "")
        refusal = service_refusal(service)
        mark = "  <- service_id" if service.id == configured else ""
        if mark and refusal:
            mark += f": refused, it {refusal}"
        inactive = "" if service.is_active else ", inactive"
        click.echo(f"  {service.id}  {service.display_name} ({kind}{inactive}){mark}")
    if configured and all(s.id != configured for s in services):
        click.echo(f"  service_id {configured} is not a Mews service of this property!")

    mapped = {v: k for k, v in options.accounting_categories.items()} if options else {}
    click.echo("\nAccounting categories (option accounting_categories, tariff class = id):")
    for category in sorted(categories, key=lambda c: (not c.is_active, c.name)):
        code = f" [{category.code}]" if category.code else ""
        mark = f"  <- {mapped[category.id]}" if category.id in mapped else ""
        if not category.is_active:
            mark = " (inactive" + (": refused" if mark else "") + ")" + mark
        click.echo(f"  {category.id}  {category.name}{code}{mark}")

    if options is not None:
        _list_products(products, options, enterprise.pricing)

    rooms = options.room_map([r.name for r in resources]) if options else None
    click.echo(f"\nRooms ({len(resources)}):")
    for resource in sorted(resources, key=lambda r: r.name):
        extension = rooms.extension_for(resource.name) if rooms else None
        phone = f"extension {extension}" if extension else "no phone in the rooms option"
        click.echo(f"  {resource.name}: {phone if rooms else resource.id}")

    chosen = options.wakeup.department_id if options else None
    click.echo(
        "\nDepartments (option wakeup.department_id: who gets the task when a wake-up call is not answered):"
    )
    for department in departments if departments is not None else []:
        mark = "  <- wakeup.department_id" if department.get("Id") == chosen else ""
        click.echo(f"  {department.get('Id')}  {department.get('Name')}{mark}")
    if departments is None:
        click.echo("  (Mews did not list them to this integration)")

    if options is None:
        return
    tariff = options.loaded_tariff
    missing = sorted(tariff.classes - set(options.accounting_categories))
    if tariff.currency != enterprise.currency:
        click.echo(f"\nThe tariff is in {tariff.currency}, but the property bills in {enterprise.currency}!")
    if missing:
        click.echo("\nTariff classes without an accounting category: " + ", ".join(missing))
        guesses = {
            call_class: category
            for call_class in missing
            for category in categories
            if call_class.casefold() in category.name.casefold()
        }
        if guesses:
            click.echo("Perhaps, under [services.options.accounting_categories]:")
            for call_class, category in sorted(guesses.items()):
                click.echo(f'  {call_class} = "{category.id}"  # {category.name}')
    await _check_ami(options)


def _list_products(products: list[dict[str, object]], options: AsteriskPbxOptions, pricing: str) -> None:
    """The configured service's products, marked with the article codes that post them."""
    from .articles import product_name, product_price

    articles: dict[str, list[str]] = defaultdict(list)
    for article, product_id in sorted(options.products.items()):
        articles[product_id].append(article)
    click.echo("\nProducts of the service (option products, article code = id; dialled as *51*ARTICLE*QTY):")
    for row in sorted(products, key=lambda r: (not r.get("IsActive", True), product_name(r))):
        price, currency = product_price(row, pricing)
        codes = articles.pop(str(row.get("Id")), [])
        mark = f"  <- article {', '.join(codes)}" if codes else ""
        if not row.get("IsActive", True):
            mark = " (inactive" + (": refused" if mark else "") + ")" + mark
        click.echo(f"  {row.get('Id')}  {product_name(row)}, {price} {currency}{mark}")
    if not products:
        click.echo("  (none)")
    for product_id, codes in articles.items():
        click.echo(f"  article {', '.join(codes)} = {product_id} is not a product of this service!")


def _ami_client(options: AsteriskPbxOptions) -> AmiClient:
    """An AMI client for a short command-line session, with no events."""
    from .actions import AmiClient

    return AmiClient(
        options.host,
        options.port,
        username=options.username,
        secret=options.secret.get_secret_value(),
        auth=options.auth,
        events="off",
    )


async def _check_ami(options: AsteriskPbxOptions) -> None:
    from .link import AmiError

    client = _ami_client(options)
    try:
        await client.connect()
        keys = await client.db_get_tree(options.astdb_family)
    except AmiError as exc:
        click.echo(f"\nAsterisk: {exc}")
    else:
        click.echo(
            f"\nAsterisk: logged in at {client.where} (AMI {client.ami_version}); "
            f"{len(keys)} AstDB keys under {options.astdb_family}/"
        )
    finally:
        await client.close()


# resync


@pbx.command("resync")
@_service
def resync_command(name: str | None) -> None:
    """Write to Asterisk's AstDB what differs from Mews: who is in which room, now (credit bars the
    bridge set are kept)."""
    settings, entry = _entry(name, required=True)
    assert entry is not None
    options = _options(entry)
    if options is None:
        raise click.ClickException("Fix the options first (mews-bridge check).")
    asyncio.run(_resync(settings, entry, options))


async def _resync(settings: Settings, entry: ServiceEntry, options: AsteriskPbxOptions) -> None:
    from datetime import UTC, datetime

    from mews_bridge import MewsClient, MewsError

    from .credit import PREFIX, barred_phones, with_credit_bars
    from .link import AmiError
    from .occupancy import Occupancy, phone_plan
    from .service import in_house, write_astdb

    occupancy = Occupancy()
    async with MewsClient(settings.mews, retry_budget_s=10) as mews:
        try:
            occupancy.set_resources(await mews.get_resources())
            reservations, guests = await in_house(mews)
        except MewsError as exc:
            raise click.ClickException(f"Could not reach Mews: {exc}") from None
    occupancy.reload(reservations, guests, datetime.now(UTC))
    rooms = options.room_map(occupancy.room_names)
    plan = phone_plan(occupancy, rooms)
    bars = await _stored(_cli_state().open_store(entry), PREFIX)
    reasons = {str(b["reservation_id"]): str(b["reason"]) for b in bars if isinstance(b, dict)}
    barred = barred_phones(occupancy, rooms, reasons)
    phones = {e: g is not None for e, g in plan.staying.items()}
    client = _ami_client(options)
    try:
        await client.connect()
        current = await client.db_get_tree(options.astdb_family)
        writes = plan.writes(current, options.astdb_family)
        if options.credit_policy is not None:
            writes = with_credit_bars(writes, current, phones, barred, options.astdb_family)
        await write_astdb(client, writes)
    except AmiError as exc:
        raise click.ClickException(f"Asterisk: {exc}") from None
    finally:
        await client.close()
    for write in writes:
        click.echo(f"{write.path} = {write.value}" if write.value is not None else f"{write.path} deleted")
    occupied = sum(1 for guest in plan.staying.values() if guest is not None)
    click.echo(f"{len(plan.staying)} room phones, {occupied} occupied: {len(writes)} AstDB changes.")


# charges


@pbx.command("charges")
@_service
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATES),
    help="Only charges in this state (repeatable).",
)
@click.option("--failed", is_flag=True, help="Only charges Mews refused or that could not be rated.")
@click.option("--retry", "retry_key", metavar="KEY", help="Queue a charge that was not posted again.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def charges_command(
    name: str | None, states: tuple[str, ...], failed: bool, retry_key: str | None, as_json: bool
) -> None:
    """Calls and room-phone articles (*51*) charged to guests: posted, pending, refused (No Post),
    unassigned and failed.

    After fixing why Mews refused a charge (a closed bill, a tax code, a permission), --retry KEY
    queues it again; the running bridge looks it up in Mews first and posts it if it is not there."""
    store = _store_of(name)
    if retry_key is not None:
        queued = asyncio.run(_queue_again(store, retry_key))
        click.echo(
            f"Queued {queued.key} again: {queued.item} from room {queued.room}, {queued.amount} "
            f"{queued.currency}. The running bridge posts it within seconds."
        )
        return
    charges = asyncio.run(_read(store))
    if failed:
        states = (*states, "failed")
    if states:
        charges = [c for c in charges if c.state in states]
    if as_json:
        from dataclasses import asdict

        click.echo(json.dumps([asdict(c) for c in charges], indent=2))
        return
    if not charges:
        click.echo("No charges recorded." if not states else "No charges in that state.")
        return
    _, entry = _entry(name, required=True)
    assert entry is not None
    zone = asyncio.run(_property_zone(_store_of(name), options_zone(entry)))
    for charge in charges:
        detail = {
            "posted": f"order {charge.order_id}",
            "pending": f"{charge.attempts} tries so far",
        }.get(charge.state, charge.error or "")
        if charge.state == "failed":
            detail += f" [key {charge.key}; Mews task: {charge.task or 'none yet'}]"
        who = charge.guest or "-"
        click.echo(
            f"{property_time(charge.start, zone)}  room {charge.room or charge.extension:<6} "
            f"{charge.item:<44} {charge.amount:>8} {charge.currency}  {charge.state:<10}  {who}  {detail}"
        )
    click.echo("")
    click.echo(_summary(charges))


def options_zone(entry: ServiceEntry) -> str | None:
    zone = entry.options.get("timezone")
    return zone if isinstance(zone, str) else None


async def _property_zone(opened: StoreOpener, fallback: str | None) -> ZoneInfo:
    """The property's time zone, as the service last read it from Mews (else the option, else UTC)."""
    from zoneinfo import ZoneInfo

    from .service import PROPERTY_KEY

    stored = await _stored(opened, PROPERTY_KEY)
    name = next((v.get("timezone") for v in stored if isinstance(v, dict)), None)
    return ZoneInfo((name if isinstance(name, str) else None) or fallback or "UTC")


def property_time(utc: str, zone: ZoneInfo) -> str:
    """``2026-11-23T09:15:00Z`` → ``2026-11-23 10:15:00`` in the property's time zone."""
    from datetime import datetime

    return datetime.fromisoformat(utc).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _summary(charges: list[Charge]) -> str:
    counts: dict[str, int] = defaultdict(int)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for charge in charges:
        counts[charge.state] += 1
        totals[charge.state] += charge.money
    currency = charges[0].currency
    labels = {"refused": "refused (No Post)"}
    return "; ".join(
        f"{labels.get(state, state)}: {counts[state]} ({totals[state]} {currency})"
        for state in STATES
        if counts[state]
    )


async def _queue_again(opened: StoreOpener, key: str) -> Charge:
    from .charges import queue_again

    async with opened as store:
        if store is None:
            raise click.ClickException("No charges are recorded yet.")
        try:
            return await queue_again(store, key)
        except KeyError:
            raise click.ClickException(
                f"No charge with the key {key!r} (see mews-bridge pbx charges)."
            ) from None
        except ValueError as exc:
            raise click.ClickException(f"Not queued: {exc}.") from None


async def _read(opened: StoreOpener) -> list[Charge]:
    from .charges import PREFIX, Charge

    async with opened as store:
        values = await store.items(PREFIX) if store is not None else {}
    return sorted((Charge.from_store(v) for v in values.values()), key=lambda c: c.start)


# call credit


@pbx.command("credit")
@_service
@click.argument("room")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def credit_command(name: str | None, room: str, as_json: bool) -> None:
    """The balance of the guest in ROOM, read from Mews now, the credit limit, and whether the bridge
    has barred the room's outside calls."""
    settings, entry = _entry(name, required=True)
    assert entry is not None
    options = _options(entry)
    if options is None:
        raise click.ClickException("Fix the options first (mews-bridge check).")
    report = asyncio.run(_credit(settings, entry, options, room))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"Room {room}: {report['guest']} (reservation {report['reservation_id']})")
    currency = report["currency"]
    click.echo(
        f"Open balance: {report['balance']} {currency} "
        f"(charges {report['charges']}, payments {report['payments']})"
    )
    policy = report["policy"]
    if policy is None:
        click.echo("Credit: not checked (set credit_policy or credit_limit)")
    elif policy == "limit":
        click.echo(f"Credit: limit of {report['limit']} {currency}")
    else:
        click.echo("Credit: prepaid (payments must cover the charges)")
    click.echo(f"State: {report['state']}")


async def _credit(
    settings: Settings, entry: ServiceEntry, options: AsteriskPbxOptions, room: str
) -> dict[str, object]:
    from decimal import Decimal

    from mews_bridge import MewsClient, MewsError

    from .credit import PREFIX, bar_reason, read_balance
    from .occupancy import IN_HOUSE

    async with MewsClient(settings.mews, retry_budget_s=10) as mews:
        try:
            enterprise = await mews.enterprise()
            resource = next((r for r in await mews.get_resources() if r.name == room), None)
            if resource is None:
                raise click.ClickException(f"Mews has no room {room}.")
            stays = [
                r
                for r in await mews.get_reservations(states=[IN_HOUSE])
                if r.assigned_resource_id == resource.id
            ]
            if not stays:
                raise click.ClickException(f"Nobody is in room {room}.")
            stay = min(stays, key=lambda r: str(r.actual_start_utc or ""))
            customers = await mews.get_customers([stay.account_id])
            balance = await read_balance(mews, stay.account_id, enterprise.currency)
        except MewsError as exc:
            raise click.ClickException(f"Could not reach Mews: {exc}") from None
    stored = await _stored(_cli_state().open_store(entry), PREFIX + stay.id)
    bar = next((v for v in stored if isinstance(v, dict)), None)
    policy = options.credit_policy
    limit = options.credit_limit or Decimal(0)
    reason = bar_reason(policy, limit, balance) if policy else None
    if bar is not None:
        zone = await _property_zone(_cli_state().open_store(entry), options_zone(entry))
        state = f"barred since {property_time(str(bar['since']), zone)}: {bar['reason']}"
        if reason is None:
            state += " (covered now: the bridge opens the line at its next check)"
    elif reason is not None:
        state = f"over the limit ({reason}); the bridge bars the line after the next charge"
    else:
        state = "open" if policy else "open (no credit check)"
    return {
        "room": room,
        "reservation_id": stay.id,
        "guest": customers[0].full_name if customers else "a company",
        "currency": balance.currency,
        "balance": f"{balance.open:.2f}",
        "charges": f"{balance.charges:.2f}",
        "payments": f"{balance.payments:.2f}",
        "policy": policy,
        "limit": f"{limit:.2f}" if policy == "limit" else None,
        "barred": bar is not None,
        "state": state,
    }


# wake-up calls

REPLY_WAIT_S = 10.0
REPLY_POLL_S = 0.2


@pbx.command("wakeup")
@_service
@click.argument("room")
@click.argument("at", metavar="HH:MM", required=False)
@click.option("--cancel", is_flag=True, help="Cancel the room's wake-up call instead.")
def wakeup_command(name: str | None, room: str, at: str | None, cancel: bool) -> None:
    """Set a wake-up call for the guest in ROOM at HH:MM (property time), or --cancel it.

    The running bridge does it, exactly as for *55*HHMM / *56 dialled on the room phone.
    """
    from datetime import datetime

    if cancel == (at is not None):
        raise click.UsageError("Give either HH:MM or --cancel.")
    code = "*56"
    if at is not None:
        try:
            code = "*55*" + datetime.strptime(at, "%H:%M").strftime("%H%M")
        except ValueError:
            raise click.BadParameter(f"{at!r} is not a time such as 07:00", param_hint="HH:MM") from None
    _, entry = _entry(name, required=True)
    assert entry is not None
    options = _options(entry)
    if options is None:
        raise click.ClickException("Fix the options first (mews-bridge check).")
    extension = options.room_map().extension_for(room)
    if extension is None:
        raise click.ClickException(f"Room {room} has no phone in the rooms option.")
    answer = asyncio.run(_send_code(options, extension, code))
    ok, _, text = answer.partition(" ")
    if ok != "ok":
        raise click.ClickException(f"Room {room}: {text or answer}")
    click.echo(f"Room {room}: {text}")


async def _send_code(options: AsteriskPbxOptions, extension: str, code: str) -> str:
    """Hand ``code`` to the running bridge as if dialled on ``extension``; its answer."""
    import uuid

    from .link import AmiError
    from .phonecodes import REPLY_KEY, USER_EVENT

    request = f"staff-{uuid.uuid4().hex}"
    answer: str | None = None
    family = f"{options.astdb_family}/{REPLY_KEY}"
    client = _ami_client(options)
    try:
        await client.connect()
        event = {
            "UserEvent": USER_EVENT,
            "Room": extension,
            "Code": code,
            "Request": request,
            "Source": "staff",
        }
        await client.action("UserEvent", event)
        for _ in range(int(REPLY_WAIT_S / REPLY_POLL_S)):  # AstDB over AMI can only be polled
            answer = await client.db_get(family, request)
            if answer is not None:
                await client.db_del(family, request)
                break
            await asyncio.sleep(REPLY_POLL_S)
    except AmiError as exc:
        raise click.ClickException(f"Asterisk: {exc}") from None
    finally:
        await client.close()
    if answer is None:
        raise click.ClickException(
            f"The bridge did not answer within {REPLY_WAIT_S:g} s: is it running, with this service?"
        )
    return answer


@pbx.command("wakeups")
@_service
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def wakeups_command(name: str | None, as_json: bool) -> None:
    """Wake-up calls: set, ringing, answered or not (finished ones stay listed for a while)."""
    from .wakeups import PREFIX, WakeUp

    values = asyncio.run(_stored(_store_of(name), PREFIX))
    records = sorted((WakeUp.from_store(v) for v in values), key=lambda r: (r.due, r.room))
    if as_json:
        from dataclasses import asdict

        click.echo(json.dumps([asdict(r) for r in records], indent=2))
        return
    if not records:
        click.echo("No wake-up calls.")
        return
    for record in records:
        click.echo(f"room {record.room:<6} {record.time}  {record.date}  {_wakeup_state(record)}")


def _wakeup_state(record: WakeUp) -> str:
    tries = f"{record.tries} {'try' if record.tries == 1 else 'tries'}"
    if record.state == "scheduled":
        text = f"set by {record.set_by}" + (
            f"; {tries} so far ({', '.join(record.outcomes)})" if record.tries else ""
        )
    elif record.state == "calling":
        text = f"ringing (try {record.tries})"
    elif record.state == "answered":
        text = f"answered on try {record.tries}"
    else:
        text = f"not answered ({tries}: {', '.join(record.outcomes)})"
        if record.reception:
            text += f"; reception {record.reception}"
        if record.task:
            text += f"; Mews task {record.task}"
    return f"{record.state:<10}  {text}"


async def _stored(opened: StoreOpener, prefix: str) -> list[dict[str, object]]:
    async with opened as store:
        return list((await store.items(prefix)).values()) if store is not None else []
