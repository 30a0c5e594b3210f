"""The ``asterisk_pbx`` service: Mews guests onto room phones, answered outside calls onto guests' bills.

* Setup checks the Mews side (service, accounting categories, currency, tax code), loads the rooms and
  who is in them, connects to the AMI and brings AstDB in line with Mews.
* ``Reservation`` and ``Resource`` events move guests in and out (check-in, check-out, room moves,
  cancellations); ``Connected`` (every Mews reconnect) reloads everything, and every AMI reconnect
  pushes AstDB again.
* ``Cdr`` events that are guests' answered outside calls are rated, journalled and posted
  (:mod:`.charges`).
* Codes dialled on room phones arrive as ``UserEvent: HotelCode`` (:mod:`.phonecodes`): minibar and
  extras (:mod:`.articles`, posted through the same ledger as calls), room status
  (:mod:`.housekeeping`) and wake-up calls (:mod:`.wakeups`); the answer goes back to the dialplan
  through AstDB.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from mews_bridge import (
    ChargeBook,
    ChargeLine,
    Customer,
    DeviceAuthFailed,
    DeviceConfigError,
    DeviceNotReady,
    Enterprise,
    InstanceContext,
    MewsAuthError,
    MewsClient,
    MewsError,
    MewsRequestError,
    MewsService,
    MewsUnavailable,
    Reservation,
    Resource,
    Service,
    is_guid,
)

from .actions import AmiClient
from .articles import ArticleRefused, Catalogue, article_charge
from .cdr import CallRecord, CdrError, charge_item_name, consumption_utc, not_billable_reason, parse_cdr
from .charges import Charge, ChargeLedger, TaxRates, load_tax_rates, retryable
from .codec import Message
from .credit import CreditGuard, barred_phones, with_credit_bars
from .housekeeping import PinGuard, RoomStatusRefused, RoomStatusSender, StatusChange, UnknownPin, resolve
from .limits import ChargeLimits
from .link import AmiActionError, AmiError
from .occupancy import IN_HOUSE, Occupancy, phone_plan
from .options import AsteriskPbxOptions
from .phonecodes import (
    REPLY_KEY,
    ArticleCode,
    CodeError,
    PhoneRequest,
    RoomStatusCode,
    WakeupCancel,
    WakeupCode,
    parse_code,
    reply,
)
from .rooms import AstDbWrite, Guest, RoomMap, asterisk_language
from .tariff import TariffError
from .wakeups import ANSWERED_KEY as WAKEUP_MARK
from .wakeups import Guest as WakeupGuest
from .wakeups import WakeupCalls, WakeupRefused

PROPERTY_KEY = "property"
"""Store key of what the command line needs to know about the property (its time zone)."""

_CHARGES_SHOWN = 50
CLOCK_SKEW = timedelta(minutes=5)
"""Slack on each side of a catch-up's UpdatedUtc window: Mews' clock and ours may differ."""
MAX_CATCH_UP = timedelta(days=90)
"""Mews caps UpdatedUtc windows at three months; an older last sync means a full reload."""
TAX_RATES_MAX_AGE = timedelta(hours=12)
"""Tax rates change with legislation: a reconnect reads them again only when older than this."""


class _CallFacts(TypedDict):
    """What a call's charge says whether it is charged or refused."""

    key: str
    start: str
    extension: str
    room: str | None
    seconds: int
    currency: str
    tax_code: str | None
    reservation_id: str | None
    account_id: str | None
    guest: str | None


def service_refusal(service: MewsService | None) -> str | None:
    """Why call charges cannot go under this Mews service, if they cannot."""
    if service is None:
        return "is not a Mews service of this property"
    if not service.is_active:
        return f"is {service.display_name!r}, which is inactive"
    kind = (service.data or {}).get("Discriminator")
    if kind != "Additional":
        return f"is {service.display_name!r}, a {kind or 'non-Additional'} service; charges need an Additional one"
    return None


def guest_of(customer: Customer | None) -> Guest | None:
    if customer is None:
        return None
    language = asterisk_language(customer.language_code or customer.preferred_language_code)
    return Guest(customer.full_name, language)


async def in_house(mews: MewsClient) -> tuple[list[Reservation], dict[str, Guest | None]]:
    """The in-house reservations and their guests (by account id)."""
    reservations = await mews.get_reservations(states=[IN_HOUSE])
    customers = await mews.get_customers([r.account_id for r in reservations]) if reservations else []
    return reservations, {c.id: guest_of(c) for c in customers}


async def write_astdb(ami: AmiClient, writes: list[AstDbWrite]) -> None:
    await ami.db_write((write.family, write.key, write.value) for write in writes)


class AsteriskPbxService(Service[AsteriskPbxOptions]):
    name = "asterisk_pbx"
    Options = AsteriskPbxOptions
    secret_options = frozenset({"secret", "staff"})
    reply_lifetime_s = 60.0
    """An answer the dialplan did not pick up (the caller hung up) is deleted from AstDB after this."""
    order_wait_s = 6.0
    """How long the caller of ``*51*`` waits for Mews to take the order (the dialplan waits 10 s)."""

    def __init__(self, ctx: InstanceContext, options: AsteriskPbxOptions) -> None:
        super().__init__(ctx, options)
        self._occupancy = Occupancy()
        self._rooms: RoomMap = options.room_map()
        self._lock = asyncio.Lock()
        self._ami: AmiClient | None = None
        self._ledger: ChargeLedger | None = None
        self._zone = ZoneInfo("UTC")
        self._taxes = TaxRates(None)
        self._limits = ChargeLimits(
            options.max_call_seconds, options.max_call_charge, options.loaded_tariff.currency, None
        )
        self._last_cdr: tuple[str, str | None] | None = None
        """When the last call record's call started, and from which extension."""
        self._room_status: RoomStatusSender | None = None
        self._pin_guard = PinGuard()
        self._wakeups: WakeupCalls | None = None
        self._seen: datetime | None = None
        """Every Mews change before this moment is in the occupancy: a reconnect reads from here on."""
        self._missed: datetime | None = None
        """The first event since the last catch-up that could not be read (the catch-up reads from it)."""
        self._taxes_at = datetime.min.replace(tzinfo=UTC)
        self._catalogue = Catalogue(options.products, options.max_article_count)
        self._credit: CreditGuard | None = None
        self._pricing = "Gross"

    @property
    def _log(self) -> logging.Logger:
        return self.ctx.logger

    # Lifecycle

    async def setup(self) -> None:
        ctx, options = self.ctx, self.options
        try:
            enterprise = await ctx.enterprise()
            self._taxes, self._taxes_at = await self._check_mews(enterprise), datetime.now(UTC)
            self._zone = ZoneInfo(options.timezone) if options.timezone else enterprise.timezone
            self._limits = replace(self._limits, editable_history=enterprise.accounting_editable_history)
            self._pricing = enterprise.pricing
            await self._load_products()
            self._set_resources(await ctx.mews.get_resources())
            for event_type, handler in (
                ("Reservation", self._on_reservation),
                ("Resource", self._on_resource),
                ("Connected", self._on_connected),
            ):
                ctx.on_unload(ctx.events.subscribe(event_type, handler))
            async with self._lock:
                await self._reload()
        except MewsAuthError as exc:
            raise DeviceAuthFailed(str(exc)) from exc
        except MewsRequestError as exc:
            raise DeviceConfigError(f"Mews refused to tell the property's set-up: {exc}") from exc
        except MewsUnavailable as exc:
            raise DeviceNotReady(f"Mews cannot be reached: {exc}") from exc
        self._ledger = ChargeLedger(
            ctx.store,
            ctx.mews,
            service_id=options.service_id,
            pricing=enterprise.pricing,
            retention=options.retention,
            retry_max_s=options.retry_max_s,
            logger=ctx.logger,
            on_auth_failure=ctx.stop,
            shared_room_charge=options.shared_room_charge,
            on_posted=self._posted,
        )
        await self._ledger.load()
        await ctx.store.put(PROPERTY_KEY, {"timezone": enterprise.timezone.key})
        self._room_status = RoomStatusSender(ctx.mews, ctx.store, ctx.logger)
        self._wakeups = WakeupCalls(
            options.wakeup,
            ctx.store,
            ctx.mews,
            ctx.logger,
            family=options.astdb_family,
            zone=enterprise.timezone,
            where=self._where,
        )
        await self._wakeups.load()
        await self._wakeups.sync(self._in_house_rooms())
        if options.credit_policy is not None:
            self._credit = CreditGuard(
                ctx.mews,
                ctx.store,
                ctx.logger,
                policy=options.credit_policy,
                limit=options.credit_limit or Decimal(0),
                currency=enterprise.currency,
                recheck_s=options.credit_recheck_s,
                changed=self._credit_changed,
            )
            await self._credit.load()
            await self._credit.sync(self._in_house_rooms())
            self._credit.check_all(self._guests())

        ami = AmiClient(
            options.host,
            options.port,
            username=options.username,
            secret=options.secret.get_secret_value(),
            auth=options.auth,
            events="cdr,user,system,call",
            logger=ctx.logger,
        )
        ami.subscribe(self._on_cdr, "Cdr")
        ami.subscribe(self._on_user_event, "UserEvent")
        ami.subscribe(self._wakeups.on_originate_response, "OriginateResponse")
        self._wakeups.attach(ami)
        ctx.on_unload(ami.close)
        await ami.connect()
        self._ami = ami
        try:
            await self.resync_pbx()
            await self._tidy_astdb()
        except AmiActionError as exc:
            raise DeviceConfigError(
                f"{exc}; the AMI user needs write = system,reporting in manager.conf"
            ) from exc
        except AmiError as exc:
            raise DeviceNotReady(str(exc)) from exc
        # After connect(): only later logins, after an outage or an Asterisk restart, resync from here.
        ami.add_connected_callback(self.resync_pbx)
        ctx.create_task(self._ledger.run(), "post call charges")
        ctx.create_task(self._room_status.run(), "send room states")
        ctx.create_task(self._wakeups.run(), "wake-up calls")
        if self._credit is not None:
            ctx.create_task(self._credit.run(), "credit checks")
        self._log.info(
            "%d rooms, %d in house; posting calls under service %s with tax code %s",
            len(self._occupancy.room_names),
            len(self._occupancy.in_house()),
            options.service_id,
            self._tax_code_at(datetime.now(UTC)),
        )

    async def _load_products(self) -> None:
        """The configured articles' products, from Mews (prices change there). If Mews refuses to
        list them, articles get an error prompt; calls are not held up for it."""
        if not self.options.products:
            return
        try:
            rows = await self.ctx.mews.pages(
                "products/getAll", {"ServiceIds": [self.options.service_id]}, "Products"
            )
        except MewsAuthError:
            raise
        except MewsRequestError as exc:
            self._log.error(
                "Mews refused to list the service's products (%s); articles cannot be ordered", exc
            )
            rows = []
        self._catalogue.load(rows, self._pricing, self._log)

    def _tax_code_at(self, moment: datetime) -> str | None:
        """The configured tax code, else the standard rate valid at ``moment``."""
        return self.options.tax_code or self._taxes.standard_code_at(moment)

    async def _check_mews(self, enterprise: Enterprise) -> TaxRates:
        """Refuse settings that Mews would refuse on every posting; returns the tax rates to post with."""
        options, mews = self.options, self.ctx.mews
        tariff = options.loaded_tariff
        if tariff.currency != enterprise.currency:
            raise DeviceConfigError(
                f"The tariff is in {tariff.currency}, but the property bills in {enterprise.currency}"
            )
        service = next((s for s in await mews.get_services() if s.id == options.service_id), None)
        refusal = service_refusal(service)
        if refusal:
            raise DeviceConfigError(
                f"service_id {options.service_id} {refusal} (mews-bridge pbx setup lists them)"
            )
        categories = {c.id: c for c in await mews.get_accounting_categories()}
        wrong = {
            k: f"{v} ({'inactive' if v in categories else 'not an accounting category of this property'})"
            for k, v in options.accounting_categories.items()
            if v not in categories or not categories[v].is_active
        }
        if wrong:
            raise DeviceConfigError(
                "accounting_categories: " + ", ".join(f"{k} = {v}" for k, v in sorted(wrong.items()))
            )
        department = options.wakeup.department_id
        if department and department not in {
            d.get("Id") for d in await mews.pages("departments/getAll", {}, "Departments")
        }:
            raise DeviceConfigError(
                f"wakeup.department_id {department} is not a department of this property "
                "(mews-bridge pbx setup lists them)"
            )
        taxes = await load_tax_rates(mews, enterprise)
        if options.tax_code is not None and options.tax_code not in taxes.known:
            raise DeviceConfigError(
                f"tax_code {options.tax_code!r} is not a tax rate code Mews knows "
                f"(tax environment {enterprise.tax_environment_code}: "
                f"{', '.join(sorted(r.code for r in taxes.rates)) or 'none'})"
            )
        if options.tax_code is None and taxes.standard_at(datetime.now(UTC)) is None:
            raise DeviceConfigError(
                f"Mews names no standard tax rate for tax environment {enterprise.tax_environment_code}; "
                "set the option tax_code"
            )
        return taxes

    async def diagnostics(self) -> dict[str, Any]:
        return {
            "ami": self._ami.diagnostics() if self._ami else None,
            "rooms": len(self._occupancy.room_names),
            "in_house": len(self._occupancy.in_house()),
            "pbx_timezone": str(self._zone),
            "tax_code": self._tax_code_at(datetime.now(UTC)),
            "charges": self._ledger.diagnostics() if self._ledger else None,
            "wakeups": len(self._wakeups.records) if self._wakeups else None,
            "credit_barred": sorted(b.room for b in self._credit.bars.values()) if self._credit else None,
        }

    async def status(self) -> dict[str, Any]:
        ami = self._ami
        return {
            "pbx_link": "up" if ami is not None and ami.connected else "down",
            "pbx_last_error": ami.last_error if ami is not None else None,
            "last_call_record_at": self._last_cdr[0] if self._last_cdr else None,
            "last_call_record_from": self._last_cdr[1] if self._last_cdr else None,
            "rooms_in_house": f"{len(self._occupancy.in_house())} of {len(self._occupancy.room_names)}",
        }

    async def charge_book(self) -> ChargeBook:
        """Counts (posted: today, in the PBX's time zone) and every charge not posted, newest first."""
        assert self._ledger is not None
        charges = await self._ledger.all()
        today = datetime.now(self._zone).date()
        counts = dict.fromkeys(("pending", "posted", "refused", "unassigned", "failed"), 0)
        for charge in charges:
            if (
                charge.state != "posted"
                or datetime.fromisoformat(charge.updated).astimezone(self._zone).date() == today
            ):
                counts[charge.state] += 1
        lines = [
            ChargeLine(
                key=c.key,
                state=c.state,
                at=c.start,
                room=c.room,
                item=c.item,
                amount=c.amount,
                currency=c.currency,
                detail=c.error or (f"{c.attempts} tries so far" if c.state == "pending" else None),
                updated=c.updated,
                retryable=retryable(c),
            )
            for c in charges
            if c.state != "posted"
        ][:_CHARGES_SHOWN]
        return ChargeBook(self.ctx.name, counts, lines, dict(self._ledger.outcomes))

    async def retry_charge(self, key: str) -> str:
        assert self._ledger is not None
        charge = await self._ledger.retry(key)
        return f"The charge for {charge.item} (room {charge.room}) will be posted again now."

    # Mews → occupancy → PBX

    def _set_resources(self, resources: list[Resource]) -> None:
        self._occupancy.set_resources(resources)
        self._rooms.set_resources(self._occupancy.room_names)

    async def _reload(self) -> set[str]:
        """Everyone in house, from Mews; returns the rooms that changed hands."""
        started = datetime.now(UTC)
        reservations, guests = await in_house(self.ctx.mews)
        before = self._holder_ids()
        changed = self._occupancy.reload(reservations, guests, datetime.now(UTC))
        self._seen, self._missed = started, None
        return self._arrivals(before, changed)

    async def _catch_up(self, since: datetime) -> tuple[set[str], set[str]]:
        """Read only what Mews changed since ``since`` (rooms, reservations in any state, guests'
        details); returns the rooms that changed and those among them with a new holder."""
        mews, now = self.ctx.mews, datetime.now(UTC)
        window = (since - CLOCK_SKEW, now + CLOCK_SKEW)
        rooms = await mews.get_resources(updated_utc=window)
        reservations = await mews.get_reservations(updated_utc=window)
        customers = {c.id: c for c in await mews.get_customers(updated_utc=window)}
        unread = {r.account_id for r in reservations if r.state == IN_HOUSE} - customers.keys()
        customers |= {c.id: c for c in await mews.get_customers(sorted(unread))} if unread else {}
        guests = {account: guest_of(customer) for account, customer in customers.items()}
        for room in rooms:
            self._occupancy.update_resource(room)
        self._rooms.set_resources(self._occupancy.room_names)
        before = self._holder_ids()
        changed = {room.id for room in rooms} | self._occupancy.rename(guests)
        for reservation in reservations:
            changed |= self._occupancy.apply(reservation, guests.get(reservation.account_id), now)
        self._seen, self._missed = now, None
        return changed, self._arrivals(before, changed)

    def _catch_up_from(self) -> datetime | None:
        """Where a reconnect's catch-up starts; None when only a full reload will do (never synced,
        or longer ago than Mews lets an UpdatedUtc window reach)."""
        since = min(filter(None, (self._seen, self._missed)), default=None)
        if since is None or datetime.now(UTC) - since > MAX_CATCH_UP:
            return None
        return since

    def _holder_ids(self) -> dict[str, str | None]:
        return {rid: s.reservation_id if s else None for rid, s in self._occupancy.holders().items()}

    def _arrivals(self, before: dict[str, str | None], changed: set[str]) -> set[str]:
        """The rooms among ``changed`` that have a new holder now (their DND is cleared)."""
        after = self._holder_ids()
        return {rid for rid in changed if after.get(rid) is not None and after[rid] != before.get(rid)}

    async def _on_reservation(self, event: dict[str, Any]) -> None:
        reservation_id = event.get("Id")
        if not is_guid(reservation_id):  # garbage would only make Mews refuse the look-up
            return
        received = datetime.now(UTC)
        async with self._lock:
            try:
                found = await self.ctx.mews.get_reservations(reservation_ids=[reservation_id])
                if not found:
                    return
                reservation = found[0]
                customers = await self.ctx.mews.get_customers([reservation.account_id])
            except MewsError as exc:
                self._log.warning(
                    "Could not read reservation %s (%s); the next resync catches up", reservation_id, exc
                )
                self._missed = min(self._missed or received, received)
                return
            self._saw(received)
            before = self._holder_ids()
            guest = guest_of(customers[0] if customers else None)
            changed = self._occupancy.apply(reservation, guest, datetime.now(UTC))
            await self._push(changed, self._arrivals(before, changed))

    async def _on_resource(self, event: dict[str, Any]) -> None:
        resource_id = event.get("Id")
        if not is_guid(resource_id):
            return
        received = datetime.now(UTC)
        async with self._lock:
            try:
                found = await self.ctx.mews.get_resources([resource_id])
            except MewsError as exc:
                self._log.warning("Could not read room %s (%s)", resource_id, exc)
                self._missed = min(self._missed or received, received)
                return
            self._saw(received)
            for resource in found:
                self._occupancy.update_resource(resource)
            self._rooms.set_resources(self._occupancy.room_names)
            await self._push({resource_id}, set())

    def _saw(self, moment: datetime) -> None:
        """An event received at ``moment`` was read: changes up to it are in the occupancy."""
        if self._seen is not None:
            self._seen = max(self._seen, moment)

    async def _on_connected(self, event: dict[str, Any]) -> None:
        if self._ledger is not None:
            self._ledger.retry_now()
        if self._room_status is not None:
            self._room_status.retry_now()
        async with self._lock:
            try:
                now = datetime.now(UTC)
                if self.options.tax_code is None and now - self._taxes_at > TAX_RATES_MAX_AGE:
                    self._taxes = await load_tax_rates(self.ctx.mews, await self.ctx.enterprise())
                    self._taxes_at = now
                await self._load_products()
                since = self._catch_up_from()
                if since is None:
                    self._set_resources(await self.ctx.mews.get_resources())
                    rooms, arrivals = None, await self._reload()
                else:
                    rooms, arrivals = await self._catch_up(since)
            except MewsError as exc:
                self._log.warning("Could not catch up with the guests in house (%s)", exc)
                return
            await self._push(rooms, arrivals)

    async def resync_pbx(self) -> None:
        """Bring every room phone in AstDB in line with who is in house now."""
        async with self._lock:
            await self._push(None, set(), check=True)

    async def _push(self, rooms: set[str] | None, arrivals: set[str], *, check: bool = False) -> None:
        """Write what differs in AstDB for ``rooms`` (None: all); ``arrivals`` also lose the last
        guest's do-not-disturb. AMI faults are logged: the resync after the AMI reconnect repairs."""
        if self._wakeups is not None:
            await self._wakeups.sync(self._in_house_rooms())
        if self._credit is not None:
            await self._credit.sync(self._in_house_rooms())
            for reservation_id, account_id, room in self._guests(arrivals):
                self._credit.check_soon(reservation_id, account_id, room)
        ami = self._ami
        if ami is None:
            return  # during setup; setup's own resync follows
        family = self.options.astdb_family
        plan = phone_plan(self._occupancy, self._rooms, rooms, arrivals)
        try:
            if rooms is None:
                current = await ami.db_get_tree(family)
            else:
                current = await ami.db_get_trees(f"{family}/{extension}" for extension in plan.extensions)
            writes = plan.writes(current, family)
            if self._credit is not None:
                phones = {e: g is not None for e, g in plan.staying.items()} | dict.fromkeys(
                    plan.arriving, True
                )
                reasons = {rid: bar.reason for rid, bar in self._credit.bars.items()}
                barred = barred_phones(self._occupancy, self._rooms, reasons)
                writes = with_credit_bars(writes, current, phones, barred, family)
            await write_astdb(ami, writes)
        except AmiError as exc:
            if check:
                raise
            self._log.warning(
                "Could not update the room phones in Asterisk (%s); resyncing on reconnect", exc
            )

    # Call credit

    def _posted(self, charge: Charge) -> None:
        if self._credit is not None and charge.reservation_id and charge.account_id and charge.room:
            self._credit.check_soon(charge.reservation_id, charge.account_id, charge.room)

    def _guests(self, rooms: set[str] | None = None) -> list[tuple[str, str, str]]:
        """(Reservation id, account id, room name) of everyone in house, or in ``rooms`` (resource ids)."""
        return [
            (stay.reservation_id, stay.account_id, self._occupancy.name_of(stay.resource_id) or "")
            for stay in self._occupancy.in_house()
            if rooms is None or stay.resource_id in rooms
        ]

    async def _credit_changed(self, reservation_id: str) -> None:
        """A bar was set or lifted: that room's phone in AstDB now."""
        stay = next((s for s in self._occupancy.in_house() if s.reservation_id == reservation_id), None)
        if stay is not None:
            async with self._lock:
                await self._push({stay.resource_id}, set())

    # CDRs → charges

    async def _on_cdr(self, message: Message) -> None:
        assert self._ledger is not None
        try:
            record = parse_cdr(message, self._zone)
        except CdrError as exc:
            self._log.warning("Ignoring a Cdr event that cannot be read: %s", exc)
            return
        self._last_cdr = (record.start.isoformat(timespec="seconds"), record.extension)
        reason = not_billable_reason(record, self._rooms.is_room, self.options.outbound_contexts)
        if reason is not None:
            self._log.debug("Not charging CDR %s: %s", record.unique_id, reason)
            return
        charge = self._charge(record)
        if charge is None:
            return
        if not await self._ledger.record(charge):
            self._log.info("CDR %s was already charged; ignoring it", charge.key)

    def _charge(self, record: CallRecord) -> Charge | None:
        """The charge for a billable CDR (None for a free call)."""
        extension = record.extension or ""
        room = self._rooms.resource_for(extension)
        resource_id = self._occupancy.id_of(room) if room else None
        stay = self._occupancy.holder(resource_id, record.start) if resource_id else None
        base: _CallFacts = {
            "key": record.dedupe_key,
            "start": consumption_utc(record),
            "extension": extension,
            "room": room,
            "seconds": record.billable_seconds,
            "currency": self.options.loaded_tariff.currency,
            "tax_code": self._tax_code_at(record.start),
            "reservation_id": stay.reservation_id if stay else None,
            "account_id": stay.account_id if stay else None,
            "guest": stay.guest.name if stay and stay.guest else None,
        }

        def failed(reason: str, amount: str = "0", call_class: str = "") -> Charge:
            self._log.error("Not charging the call from room %s to %s: %s", room, record.destination, reason)
            return Charge(
                state="failed",
                number=record.destination,
                item=charge_item_name(record.destination, record.billable_seconds),
                call_class=call_class,
                amount=amount,
                error=reason,
                **base,
            )

        refusal = self._limits.call_refusal(record, datetime.now(UTC))
        if refusal is not None:
            return failed(refusal)
        try:
            rating = self.options.loaded_tariff.rate(record.destination, record.billable_seconds)
        except TariffError as exc:
            return failed(str(exc))
        if not rating.chargeable:
            self._log.info("Call from room %s to %s is free (%s)", room, rating.display, rating.free_reason)
            return None
        refusal = self._limits.amount_refusal(rating.amount)
        if refusal is not None:
            return failed(refusal, str(rating.amount), rating.call_class)
        return Charge(
            state="pending" if stay else "unassigned",
            number=rating.number,
            item=charge_item_name(rating.display, record.billable_seconds),
            call_class=rating.call_class,
            amount=str(rating.amount),
            accounting_category_id=self.options.accounting_categories.get(rating.call_class),
            error=None if stay else f"nobody was in room {room} when the call started",
            **base,
        )

    # Codes dialled on room phones

    async def _tidy_astdb(self) -> None:
        """At start: answers to codes left by a bridge that stopped within their minute, and wake-up
        marks of tries nobody waits for any more, are deleted."""
        assert self._ami is not None and self._wakeups is not None
        family = self.options.astdb_family
        await self._ami.action("DBDelTree", {"Family": f"{family}/{REPLY_KEY}"}, check=False)
        waited_for = {r.action_id for r in self._wakeups.records if r.state == "calling"}
        for path in await self._ami.db_get_tree(f"{family}/{WAKEUP_MARK}"):
            action_id = path.rsplit("/", 1)[-1]
            if action_id not in waited_for:
                await self._ami.db_del(f"{family}/{WAKEUP_MARK}", action_id)

    def _on_user_event(self, message: Message) -> None:
        request = PhoneRequest.from_event(message)
        if request is not None:
            # Each code in its own task: one waiting for Mews never holds up the next caller.
            self.ctx.create_task(self._answer(request), f"code from {request.extension}")

    async def _answer(self, request: PhoneRequest) -> None:
        ok, text = await self._handle_code(request)
        family = f"{self.options.astdb_family}/{REPLY_KEY}"
        ami = self._ami
        if ami is None:
            return
        try:
            await ami.db_put(family, request.request, reply(ok, text))
            await asyncio.sleep(self.reply_lifetime_s)
            await ami.db_del(family, request.request)
        except AmiError as exc:
            self._log.warning("Could not answer the code from extension %s (%s)", request.extension, exc)

    async def _handle_code(self, request: PhoneRequest) -> tuple[bool, str]:
        """Carry out a code; (ok, words for the caller). Refusals are logged here, without PINs."""
        room = self._rooms.resource_for(request.extension)
        resource_id = self._occupancy.id_of(room) if room else None
        try:
            code = parse_code(request.code)
            if room is None or resource_id is None:
                raise CodeError(f"extension {request.extension} is not a room phone")
            if isinstance(code, ArticleCode):
                return await self._order_article(request, room, resource_id, code)
            if isinstance(code, RoomStatusCode):
                return await self._set_room_status(request.extension, room, resource_id, code)
            return True, await self._wakeup(request, room, resource_id, code)
        except (ArticleRefused, CodeError, RoomStatusRefused, WakeupRefused) as exc:
            self._log.warning("Refused a code dialled on extension %s: %s", request.extension, exc)
            return False, str(exc)

    async def _order_article(
        self, request: PhoneRequest, room: str, resource_id: str, code: ArticleCode
    ) -> tuple[bool, str]:
        """Record the article like a call and wait a few seconds for Mews, so the caller hears whether
        it was posted; an order still pending then is posted later and confirmed now."""
        assert self._ledger is not None
        product = self._catalogue.product(code.article, code.count)
        now = datetime.now(UTC)
        stay = self._occupancy.holder(resource_id, now)
        base = {
            "state": "pending" if stay else "unassigned",
            "start": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "extension": request.extension,
            "room": room,
            "reservation_id": stay.reservation_id if stay else None,
            "account_id": stay.account_id if stay else None,
            "guest": stay.guest.name if stay and stay.guest else None,
            "error": None if stay else f"nobody was in room {room} when it was ordered",
        }
        charge = article_charge(product, code.article, code.count, request.request, base)
        if not await self._ledger.record(charge):
            self._log.info("The order %s was already recorded; not recording it again", charge.key)
        settled = await self._ledger.outcome(charge.key, self.order_wait_s) or charge
        if settled.state == "pending":
            return True, f"{settled.item} recorded for room {room}"
        if settled.state == "posted":
            return True, f"{settled.item} posted to room {room}"
        return False, {
            "refused": f"room {room} may not charge to the room; please pay at the reception",
            "unassigned": f"room {room} has no guest in house",
        }.get(settled.state, f"{settled.item} not posted; the reception was told")

    async def _set_room_status(
        self, extension: str, room: str, resource_id: str, code: RoomStatusCode
    ) -> tuple[bool, str]:
        assert self._room_status is not None
        now = datetime.now(UTC)
        self._pin_guard.check(extension, now)
        try:
            staff, state = resolve(self.options.housekeeping, code.pin, code.status)
        except UnknownPin:
            self._pin_guard.wrong(extension, now)
            raise
        self._pin_guard.right(extension)
        if await self._room_status.send(StatusChange(resource_id, room, state, staff)):
            return True, f"room {room} {state}"
        return False, f"Mews refused room {room} {state}"

    async def _wakeup(
        self, request: PhoneRequest, room: str, resource_id: str, code: WakeupCode | WakeupCancel
    ) -> str:
        assert self._wakeups is not None
        stay = self._occupancy.holder(resource_id)
        if stay is None:
            raise CodeError(f"room {room} has no guest in house")
        if isinstance(code, WakeupCancel):
            return await self._wakeups.cancel(stay.reservation_id, room)
        set_by = "staff" if request.by_staff else "the room phone"
        return await self._wakeups.set(stay.reservation_id, room, code.at, set_by)

    def _in_house_rooms(self) -> dict[str, str]:
        """Reservation id → room name, for everyone in house."""
        return {
            stay.reservation_id: self._occupancy.name_of(stay.resource_id) or ""
            for stay in self._occupancy.in_house()
        }

    def _where(self, reservation_id: str) -> WakeupGuest | None:
        stay = next((s for s in self._occupancy.in_house() if s.reservation_id == reservation_id), None)
        room = self._occupancy.name_of(stay.resource_id) if stay else None
        extension = self._rooms.extension_for(room) if room else None
        if stay is None or room is None or extension is None:
            return None
        return WakeupGuest(room, extension, stay.guest.language if stay.guest else None)
