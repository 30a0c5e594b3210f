"""Charges, store and forward: every billable call, and every article ordered from a room phone
(``*51*ARTICLE*QTY``), is written to the journal before anything is sent to Mews, then posted with
``orders/add`` until Mews has it, exactly once.

A charge lives in the service's key/value store under ``charge:<dedupe key>`` (``cdr-`` and the CDR's
UniqueID, plus Sequence when mapped; ``item-`` and the dialling channel's UniqueID for an article)
and moves through these states:

* ``pending``: to be posted; retried with capped backoff through Mews outages and restarts;
* ``posted``: Mews accepted it (``order_id``);
* ``refused``: the guest is on the Cashlist ("No Post"), checked with Mews right before posting;
* ``unassigned``: nobody held the room when the call started;
* ``failed``: Mews refused the order for good (400/403: a closed bill, company billing not enabled
  for the integration, a wrong tax code) or the call could not be rated; ``error`` keeps why. Staff
  learn about it inside Mews: a task names the room, the guest, the call and the reason (``task``).
  Never retried blindly: the same request would be refused again. ``mews-bridge pbx charges --retry
  KEY`` queues one again after a fix.

A second posting is impossible twice over: a CDR whose key is known is ignored, and a charge that
was already sent once (its outcome unknown after a timeout, a dropped connection, a 5xx or a crash)
is first looked up in Mews by its ``ExternalIdentifier`` before it is sent again; while that look-up
fails, nothing is sent. The client itself never re-sends ``orders/add`` after an unknown outcome.
The look-up searches the whole service around the consumption time, not the guest's account, because
routing rules and billing automation move items to other accounts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from mews_bridge import (
    Enterprise,
    KeyValueStore,
    MewsAuthError,
    MewsClient,
    MewsError,
    MewsOutcomeUnknown,
    MewsRequestError,
    MewsUnavailable,
    NewOrder,
    OrderItemParameters,
    TaxRate,
)

SharedRoomCharge = Literal["owner", "first"]
ChargeState = Literal["pending", "posted", "refused", "unassigned", "failed"]
STATES: tuple[ChargeState, ...] = ("pending", "posted", "refused", "unassigned", "failed")
PREFIX = "charge:"
RETRY_PREFIX = "charge-retry:"
"""A charge staff queued again (``pbx charges --retry``); the running ledger picks it up."""
NO_POST = "Cashlist"
_SETTLED: frozenset[str] = frozenset({"posted", "refused", "unassigned"})
_PRUNE_EVERY_S = 24 * 3600.0
_RETRY_INITIAL_S = 1.0
_RESCAN_S = 2.0
"""How often the ledger looks for charges queued again from the command line."""
LOOKUP_MARGIN = timedelta(minutes=10)
"""The look-up reads the service's items consumed this long either side of the call's start."""
TASK_DEADLINE = timedelta(hours=12)
TASK_RETRY_S = 60.0
"""A task Mews could not take (an outage) is tried again this much later."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Charge:
    """One billable call or ordered article as kept in the journal (JSON; money as text, read back as
    Decimal)."""

    key: str
    """Dedupe key and the order item's ExternalIdentifier (``cdr-1795424531.48``, ``item-1795424531.50``)."""
    state: ChargeState
    start: str
    """Call start, ISO 8601 UTC: the order's ConsumptionUtc."""
    extension: str
    room: str | None
    number: str
    item: str
    """The bill line: ``Call to +48 22 123 45 67 (3 min 12 s)``, ``2 x Mineral water``."""
    call_class: str
    """The tariff class of a call; ``product`` for an article (priced by Mews); empty: not priced."""
    seconds: int
    amount: str
    currency: str
    tax_code: str | None = None
    accounting_category_id: str | None = None
    reservation_id: str | None = None
    account_id: str | None = None
    guest: str | None = None
    attempts: int = 0
    """Times it was sent to Mews (a send whose answer was lost counts)."""
    order_id: str | None = None
    error: str | None = None
    task: str | None = None
    """For a failed charge: the Mews task that tells staff, or why there is none."""
    product_id: str | None = None
    """An article: the Mews product posted as a product order (``number`` is the article code)."""
    count: int = 1
    received: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)

    @property
    def money(self) -> Decimal:
        return Decimal(self.amount)

    @property
    def start_utc(self) -> datetime:
        return datetime.fromisoformat(self.start)

    @classmethod
    def from_store(cls, value: dict[str, Any]) -> Charge:
        return cls(**value)

    def moved(self, state: ChargeState, **changes: Any) -> Charge:
        return replace(self, state=state, updated=_now(), **changes)


def retryable(charge: Charge) -> bool:
    """A failed charge that was priced and has a guest: Mews refused it, and it may be sent again."""
    return charge.state == "failed" and bool(charge.call_class) and charge.account_id is not None


def _valid_at(rate: TaxRate, moment: datetime) -> bool:
    if not rate.validity_intervals_utc:
        return True
    for interval in rate.validity_intervals_utc:
        start, end = interval.get("StartUtc"), interval.get("EndUtc")
        if (not start or datetime.fromisoformat(start) <= moment) and (
            not end or moment < datetime.fromisoformat(end)
        ):
            return True
    return False


@dataclass(frozen=True)
class TaxRates:
    """The relative tax rates of the property's tax environment, with their validity, so that each
    call gets the standard rate valid when it was made (a rate change at midnight splits the day)."""

    environment: str | None
    rates: tuple[TaxRate, ...] = ()
    known: frozenset[str] = frozenset()
    """Every tax rate code Mews knows, in any environment (a configured tax_code must be one)."""

    def standard_at(self, moment: datetime) -> TaxRate | None:
        """Mews' documented choice: of the environment's relative rates valid at ``moment``, the highest."""
        valid = [rate for rate in self.rates if _valid_at(rate, moment)]
        return max(valid, key=lambda rate: rate.relative_value or 0, default=None)

    def standard_code_at(self, moment: datetime) -> str | None:
        rate = self.standard_at(moment)
        return rate.code if rate else None

    def explain(self, moment: datetime) -> str:
        """Why :meth:`standard_at` chooses what it does, in words for ``pbx setup``."""
        if self.environment is None:
            return "none: Mews names no tax environment for the property; set the option tax_code"
        best = self.standard_at(moment)
        if best is None:
            return (
                f"none: tax environment {self.environment} has no relative rate valid now; "
                "set the option tax_code"
            )
        others = sorted(
            (
                f"{r.code} {r.relative_value:.0%}"
                for r in self.rates
                if r is not best and _valid_at(r, moment)
            ),
        )
        later = sorted(r.code for r in self.rates if not _valid_at(r, moment))
        return (
            f"{best.code}: the highest relative rate ({best.relative_value:.0%}) of tax environment "
            f"{self.environment} valid now"
            + (f" (also valid: {', '.join(others)})" if others else "")
            + (f"; not valid now: {', '.join(later)}" if later else "")
            + ". Each call gets the standard rate valid when it started."
        )


async def load_tax_rates(mews: MewsClient, enterprise: Enterprise) -> TaxRates:
    """The enterprise's tax environment, its taxations and their relative rates (every validity)."""
    taxations = await mews.get_taxations()
    known = frozenset(rate.code for rate in taxations.tax_rates)
    if not enterprise.tax_environment_code:
        return TaxRates(None, known=known)
    environment = next(
        (e for e in await mews.get_tax_environments() if e.code == enterprise.tax_environment_code), None
    )
    if environment is None:
        return TaxRates(None, known=known)
    rates = tuple(
        rate
        for rate in taxations.tax_rates
        if rate.taxation_code in environment.taxation_codes and rate.relative_value is not None
    )
    return TaxRates(environment.code, rates, known)


def unit_amount(charge: Charge, pricing: str) -> dict[str, Any]:
    """``UnitAmount`` in the property's pricing mode: GrossValue for Gross, NetValue for Net."""
    return {
        "Currency": charge.currency,
        # JSON has no decimal type; a value with the currency's few decimals survives float's
        # shortest repr exactly, which is what reaches the wire.
        "GrossValue" if pricing == "Gross" else "NetValue": float(charge.money),
        "TaxCodes": [charge.tax_code] if charge.tax_code else [],
    }


def new_order(charge: Charge, service_id: str, pricing: str) -> NewOrder:
    """A call as an ad-hoc item (its price is the tariff's)."""
    assert charge.account_id is not None
    return NewOrder(
        service_id=service_id,
        account_id=charge.account_id,
        linked_reservation_id=charge.reservation_id,
        consumption_utc=charge.start_utc,
        notes=f"Telephone, room {charge.room}: {charge.number} ({charge.key})",
        items=[
            OrderItemParameters(
                name=charge.item,
                unit_count=1,
                unit_amount=unit_amount(charge, pricing),
                accounting_category_id=charge.accounting_category_id,
                external_identifier=charge.key,
            )
        ],
    )


def order_parameters(charge: Charge, service_id: str, pricing: str) -> dict[str, Any]:
    """The ``orders/add`` parameters: a call as an item; an article as a product order, so Mews
    prices it and books it under the product's own accounting category."""
    if charge.product_id is None:
        return new_order(charge, service_id, pricing).to_mews()
    assert charge.account_id is not None
    order = NewOrder(
        service_id=service_id,
        account_id=charge.account_id,
        linked_reservation_id=charge.reservation_id,
        consumption_utc=charge.start_utc,
        notes=f"Room phone, room {charge.room}: article {charge.number} ({charge.key})",
    ).to_mews()
    del order["Items"]
    order["ProductOrders"] = [
        {"ProductId": charge.product_id, "Count": charge.count, "ExternalIdentifier": charge.key}
    ]
    return order


class ChargeLedger:
    """Keeps charges in ``store`` and posts the pending ones; :meth:`run` is the posting task.

    ``on_auth_failure`` is called with the reason when Mews answers 401 to ``orders/add``: retrying
    cannot help, so the service stops (the charge stays pending for after the fix)."""

    def __init__(
        self,
        store: KeyValueStore,
        mews: MewsClient,
        *,
        service_id: str,
        pricing: str,
        retention: timedelta,
        retry_max_s: float,
        logger: logging.Logger,
        on_auth_failure: Callable[[str], None] | None = None,
        shared_room_charge: SharedRoomCharge = "owner",
        on_posted: Callable[[Charge], None] | None = None,
    ) -> None:
        self._store = store
        self.shared_room_charge = shared_room_charge
        self._on_posted = on_posted
        self._mews = mews
        self.service_id = service_id
        self.pricing = pricing
        self._retention = retention
        self._retry_max_s = retry_max_s
        self._retry_initial_s = min(_RETRY_INITIAL_S, retry_max_s)
        self._log = logger
        self._on_auth_failure = on_auth_failure
        self._due: dict[str, float] = {}
        """Pending keys → when to try next (monotonic)."""
        self._untold: dict[str, float] = {}
        """Failed charges staff have not been told about in Mews yet → when to try (monotonic)."""
        self._failures: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._editing = asyncio.Lock()
        """Held while a kept charge is read and written back outside the posting task."""
        self._watchers: dict[str, asyncio.Event] = {}
        """Keys someone waits on (:meth:`outcome`) → set when the charge leaves ``pending``."""
        self.outcomes: Counter[str] = Counter()
        """Charges that reached each state since start."""
        self.last_error: str | None = None

    async def load(self) -> None:
        """Queue the charges a previous run left pending and forget old settled ones."""
        await self._prune()
        for key in await self._store.items(RETRY_PREFIX):
            await self._store.delete(key)  # their charges are pending, so queued just below
        for key, value in (await self._store.items(PREFIX)).items():
            if value.get("state") == "pending":
                self._due[key.removeprefix(PREFIX)] = 0.0
            elif value.get("state") == "failed" and value.get("task") is None:
                self._untold[key.removeprefix(PREFIX)] = 0.0
        if self._due:
            self._log.info("%d call charge(s) from before the restart are still to be posted", len(self._due))

    async def known(self, key: str) -> bool:
        return await self._store.get(PREFIX + key) is not None

    async def record(self, charge: Charge) -> bool:
        """Journal a new charge (before any posting); False if its key is already known."""
        if await self.known(charge.key):
            return False
        await self._save(charge)
        if charge.state == "pending":
            self._due[charge.key] = 0.0
        else:
            self.outcomes[charge.state] += 1
            self._log.warning(
                "%s from room %s is %s: %s", charge.item, charge.room, charge.state, charge.error
            )
            if charge.state == "failed":
                self._untold[charge.key] = 0.0
        self._wake.set()
        return True

    def retry_now(self) -> None:
        """Mews is reachable again: try every pending charge now."""
        for key in self._due:
            self._due[key] = 0.0
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._due)

    def diagnostics(self) -> dict[str, Any]:
        return {"pending": self.pending, "since_start": dict(self.outcomes), "last_error": self.last_error}

    async def get(self, key: str) -> Charge | None:
        value = await self._store.get(PREFIX + key)
        return Charge.from_store(value) if value else None

    async def outcome(self, key: str, timeout_s: float) -> Charge | None:
        """The charge once it has left ``pending``, or as it is after ``timeout_s`` (still pending
        while Mews is slow or its answer was lost)."""
        event = self._watchers.setdefault(key, asyncio.Event())
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    while True:
                        event.clear()
                        charge = await self.get(key)
                        if charge is None or charge.state != "pending":
                            return charge
                        await event.wait()
        finally:
            self._watchers.pop(key, None)
        return await self.get(key)

    async def all(self) -> list[Charge]:
        """Every charge still kept, newest call first."""
        values = (await self._store.items(PREFIX)).values()
        return sorted((Charge.from_store(v) for v in values), key=lambda c: c.start, reverse=True)

    async def retry(self, key: str) -> Charge:
        """Send a failed charge again (staff fixed what Mews refused). Like any charge sent before, it is
        looked up in Mews first, so it can never be posted twice."""
        value = await self._store.get(PREFIX + key)
        if value is None:
            raise LookupError(f"No call charge {key} is kept.")
        charge = Charge.from_store(value)
        if charge.state != "failed":
            raise ValueError(
                f"The charge for {charge.item} is {charge.state}; only a failed one can be retried."
            )
        if not retryable(charge):
            raise ValueError(f"The call for {charge.item} could not be priced: correct the tariff first.")
        async with self._editing:
            charge = await queue_again(self._store, key)
            self._failures.pop(key, None)
            await self._queue_retried()
        self._wake.set()
        self._log.info("Retrying the failed charge %s for %s, as staff asked", key, charge.item)
        return charge

    # The posting task

    async def run(self) -> None:
        pruned = rescanned = time.monotonic()
        while True:
            now = time.monotonic()
            for key in sorted(k for k, due in self._due.items() if due <= now):
                if not await self._post(key):
                    return
            for key in sorted(k for k, due in self._untold.items() if due <= now):
                await self._tell_staff(key)
            if now - rescanned > _RESCAN_S:
                await self._queue_retried()
                rescanned = now
            if now - pruned > _PRUNE_EVERY_S:
                await self._prune()
                pruned = now
            self._wake.clear()
            wait = min([*self._due.values(), *self._untold.values(), now + _RESCAN_S]) - time.monotonic()
            if wait > 0:
                try:
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _queue_retried(self) -> None:
        for key in await self._store.items(RETRY_PREFIX):
            charge_key = key.removeprefix(RETRY_PREFIX)
            charge = await self.get(charge_key)
            if charge is not None and charge.state == "failed":
                # The command line queued it while the task for it was being saved, which wrote
                # "failed" back over "pending": the marker is staff's word, so it stands.
                await self._save(charge.moved("pending", error=f"queued again after: {charge.error}"))
            await self._store.delete(key)
            self._log.info("The charge %s was queued again by staff", charge_key)
            self._due[charge_key] = 0.0

    async def _post(self, key: str) -> bool:
        """One try at a pending charge; False when posting must stop (Mews refused the tokens)."""
        value = await self._store.get(PREFIX + key)
        charge = Charge.from_store(value) if value else None
        if charge is None or charge.state != "pending":
            self._due.pop(key, None)
            return True
        try:
            await self._try(charge)
        except MewsAuthError as exc:
            reason = f"Mews refused to take call charges (HTTP 401): {exc.message}"
            self.last_error = reason
            self._log.error("%s; the charges stay pending until the bridge restarts", reason)
            if self._on_auth_failure is not None:
                self._on_auth_failure(reason)
            return False
        except MewsRequestError as exc:
            await self._settle(charge.moved("failed", error=exc.message))
            self._untold[key] = 0.0
            self._log.error("Mews refused the charge for %s (%s): %s", charge.item, charge.key, exc.message)
        except MewsError as exc:
            self._failures[key] += 1
            delay = min(self._retry_max_s, self._retry_initial_s * 2 ** min(self._failures[key] - 1, 20))
            self._due[key] = time.monotonic() + delay * random.uniform(0.5, 1.0)
            self.last_error = str(exc)
            (self._log.warning if self._failures[key] == 1 else self._log.debug)(
                "Could not post the charge %s yet (%s); it is kept and retried", charge.key, exc
            )
        return True

    async def _try(self, charge: Charge) -> None:
        try:
            if charge.attempts:
                order_id = await self._posted_order(charge)
                if order_id is not None:
                    await self._settle(charge.moved("posted", order_id=order_id))
                    self._log.info("The charge %s had reached Mews already (order %s)", charge.key, order_id)
                    return
            payer, no_post = await self._payer(charge)
        except MewsAuthError:
            raise
        except MewsError as exc:
            # No send while the checks before it fail, whatever Mews said: they are reads.
            raise MewsUnavailable(exc.operation, exc.message, exc.status, exc.request_id) from exc
        if no_post is not None:
            await self._settle(
                charge.moved("refused", account_id=payer, error="the guest is on the Cashlist (No Post)")
            )
            self._log.info(
                "Not charging %s to room %s: %s is on the Cashlist", charge.item, charge.room, no_post
            )
            return
        # Durable before sending: if the answer is lost, the next try looks the order up first.
        charge = replace(charge, account_id=payer, attempts=charge.attempts + 1)
        await self._save(charge)
        order = order_parameters(charge, self.service_id, self.pricing)
        try:
            result = await self._mews.call("orders/add", order, retry_budget_s=self._retry_max_s)
        except MewsOutcomeUnknown as exc:
            self._log.warning(
                "Mews may or may not have the charge %s (%s); it is looked up before it is sent again",
                charge.key,
                exc,
            )
            raise
        await self._settle(charge.moved("posted", order_id=str(result["OrderId"])))
        self._log.info(
            "Posted %s to room %s: %s %s", charge.item, charge.room, charge.amount, charge.currency
        )

    async def _payer(self, charge: Charge) -> tuple[str, str | None]:
        """Who is charged (an account id) and, if that one is on the Cashlist ("No Post"), their name.

        ``owner``: the reservation's owner, which may be a company; a company is not a person and has
        no Cashlist flag, so the guests staying under it are checked instead. ``first``: the first
        person in the room: the owner if a customer owns the reservation, else the first guest Mews lists
        as staying under it (its first companionship)."""
        assert charge.account_id is not None
        owners = await self._mews.get_customers([charge.account_id])  # a company's id finds none
        if owners:
            guests = owners
        else:
            assert charge.reservation_id is not None
            ids = [c.customer_id for c in await self._mews.get_companionships([charge.reservation_id])]
            guests = await self._mews.get_customers(list(dict.fromkeys(ids))) if ids else []
            order = {customer_id: n for n, customer_id in enumerate(ids)}
            guests.sort(key=lambda g: order[g.id] if g.id in order else len(order))
            if self.shared_room_charge == "first" and guests:
                first = guests[0]
                return first.id, first.full_name if NO_POST in first.classifications else None
        return charge.account_id, next((g.full_name for g in guests if NO_POST in g.classifications), None)

    async def _posted_order(self, charge: Charge) -> str | None:
        """The order Mews already has for this charge, from an earlier send whose answer was lost:
        any item of the service consumed around the call's start that carries its key, whichever
        account it was moved to."""
        around = charge.start_utc
        window = {
            "StartUtc": (around - LOOKUP_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "EndUtc": (around + LOOKUP_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        items = await self._mews.pages(
            "orderItems/getAll", {"ServiceIds": [self.service_id], "ConsumedUtc": window}, "OrderItems"
        )
        found = next((i for i in items if i.get("ExternalIdentifier") == charge.key), None)
        return str(found.get("ServiceOrderId") or found.get("Id")) if found else None

    async def _tell_staff(self, key: str) -> None:
        """A Mews task for a failed charge, so the front desk sees it where it works."""
        value = await self._store.get(PREFIX + key)
        charge = Charge.from_store(value) if value else None
        if charge is None or charge.state != "failed" or charge.task is not None:
            self._untold.pop(key, None)
            return
        what = "Room phone order" if charge.product_id else "Telephone charge"
        name = f"{what} not posted: room {charge.room or charge.extension}"
        description = (
            f"{charge.item} from room {charge.room or charge.extension}"
            f" ({charge.guest or 'no guest on record'}), {charge.amount} {charge.currency},"
            f" at {charge.start.replace('T', ' ')}, key {charge.key}."
            f" Not posted: {charge.error}."
            f" Post it by hand, or fix the cause and run: mews-bridge pbx charges --retry {charge.key}"
        )
        try:
            task = await self._mews.add_task(
                name,
                description,
                deadline=datetime.now(UTC) + TASK_DEADLINE,
                service_order_id=charge.reservation_id,
            )
        except MewsOutcomeUnknown:
            task = "unknown: Mews' answer was lost, the task may exist"  # never sent twice
        except MewsRequestError as exc:  # e.g. the integration may not add tasks: not retried
            task = f"not created: {exc.message}"
            self._log.warning("Mews refused a task for the failed charge %s: %s", key, exc.message)
        except MewsError as exc:
            self._log.warning("Could not put a task in Mews for the failed charge %s yet: %s", key, exc)
            self._untold[key] = time.monotonic() + TASK_RETRY_S
            return
        # Staff may have queued it again while Mews was answering: keep their state, add the task.
        async with self._editing:
            current = await self.get(key)
            if current is not None:
                await self._save(replace(current, task=task))
        self._untold.pop(key, None)

    async def _settle(self, charge: Charge) -> None:
        await self._save(charge)
        self._due.pop(charge.key, None)
        self._failures.pop(charge.key, None)
        self.outcomes[charge.state] += 1
        if charge.key in self._watchers:
            self._watchers[charge.key].set()
        if charge.state == "posted" and self._on_posted is not None:
            self._on_posted(charge)

    async def _save(self, charge: Charge) -> None:
        await self._store.put(PREFIX + charge.key, asdict(charge))

    async def _prune(self) -> None:
        cutoff = (datetime.now(UTC) - self._retention).isoformat(timespec="seconds")
        old = [
            key
            for key, value in (await self._store.items(PREFIX)).items()
            if value.get("state") in _SETTLED and value.get("updated", "") < cutoff
        ]
        for key in old:
            await self._store.delete(key)
        if old:
            self._log.info("Forgot %d settled call charge(s) older than the retention period", len(old))


async def queue_again(store: KeyValueStore, key: str) -> Charge:
    """Put a failed (or refused, unassigned) charge back to pending after staff fixed the cause; the
    running ledger picks it up within seconds. It is looked up in Mews before it is sent."""
    value = await store.get(PREFIX + key)
    if value is None:
        raise KeyError(key)
    charge = Charge.from_store(value)
    if charge.state in ("pending", "posted"):
        raise ValueError(f"the charge {key} is {charge.state}; only a charge that was not posted is queued")
    if charge.account_id is None:
        raise ValueError(f"the charge {key} has no guest account to post to")
    if not charge.call_class:
        raise ValueError(f"the call {key} could not be rated, so there is no price to post")
    queued = charge.moved("pending", error=f"queued again after: {charge.error}" if charge.error else None)
    await store.put(PREFIX + key, asdict(queued))
    await store.put(RETRY_PREFIX + key, {"queued": _now()})
    return queued
