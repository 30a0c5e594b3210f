"""Call charges, store and forward: every billable call is written to the journal before anything is
sent to Mews, then posted with ``orders/add`` until Mews has it, exactly once.

A charge lives in the service's key/value store under ``charge:<dedupe key>`` (the CDR's UniqueID,
plus Sequence when mapped) and moves through these states:

* ``pending``: to be posted; retried with capped backoff through Mews outages and restarts;
* ``posted``: Mews accepted it (``order_id``);
* ``refused``: the guest is on the Cashlist ("No Post"), checked with Mews right before posting;
* ``unassigned``: nobody held the room when the call started;
* ``failed``: Mews refused the order (400/403) or the call could not be rated; ``error`` says why.
  Never retried blindly: the same request would be refused again.

A second posting is impossible twice over: a CDR whose key is known is ignored, and a charge that
was already sent once (its outcome unknown after a timeout, a 5xx or a crash) is first looked up in
Mews by its ``ExternalIdentifier`` before it is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from mews_bridge.journal import KeyValueStore
from mews_bridge.mews.client import MewsClient
from mews_bridge.mews.enterprise import Enterprise
from mews_bridge.mews.errors import MewsError, MewsRequestError
from mews_bridge.mews.models import NewOrder, OrderItemParameters, TaxRate

ChargeState = Literal["pending", "posted", "refused", "unassigned", "failed"]
STATES: tuple[ChargeState, ...] = ("pending", "posted", "refused", "unassigned", "failed")
PREFIX = "charge:"
NO_POST = "Cashlist"
_SETTLED: frozenset[str] = frozenset({"posted", "refused", "unassigned"})
_PRUNE_EVERY_S = 24 * 3600.0
_RETRY_INITIAL_S = 1.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Charge:
    """One billable call as kept in the journal (JSON; money as text, read back as Decimal)."""

    key: str
    """Dedupe key and the order item's ExternalIdentifier (``cdr-1795424531.48``)."""
    state: ChargeState
    start: str
    """Call start, ISO 8601 UTC: the order's ConsumptionUtc."""
    extension: str
    room: str | None
    number: str
    item: str
    """The bill line: ``Call to +48 22 123 45 67 (3 min 12 s)``."""
    call_class: str
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


async def standard_tax_code(mews: MewsClient, enterprise: Enterprise) -> str | None:
    """The property's standard tax rate code, as Mews documents choosing one: the enterprise's tax
    environment, its taxations, and of their relative rates valid now the highest (e.g. ``AT-S``)."""
    if not enterprise.tax_environment_code:
        return None
    environment = next(
        (e for e in await mews.get_tax_environments() if e.code == enterprise.tax_environment_code), None
    )
    if environment is None:
        return None
    now = datetime.now(UTC)
    rates = [
        rate
        for rate in (await mews.get_taxations()).tax_rates
        if rate.taxation_code in environment.taxation_codes
        and rate.relative_value is not None
        and _valid_at(rate, now)
    ]
    best = max(rates, key=lambda rate: rate.relative_value or 0, default=None)
    return best.code if best else None


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


class ChargeLedger:
    """Keeps charges in ``store`` and posts the pending ones; :meth:`run` is the posting task."""

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
    ) -> None:
        self._store = store
        self._mews = mews
        self.service_id = service_id
        self.pricing = pricing
        self._retention = retention
        self._retry_max_s = retry_max_s
        self._retry_initial_s = min(_RETRY_INITIAL_S, retry_max_s)
        self._log = logger
        self._due: dict[str, float] = {}
        """Pending keys → when to try next (monotonic)."""
        self._failures: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self.outcomes: Counter[str] = Counter()
        """Charges that reached each state since start."""
        self.last_error: str | None = None

    async def load(self) -> None:
        """Queue the charges a previous run left pending and forget old settled ones."""
        await self._prune()
        for key, value in (await self._store.items(PREFIX)).items():
            if value.get("state") == "pending":
                self._due[key.removeprefix(PREFIX)] = 0.0
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
            self._wake.set()
        else:
            self.outcomes[charge.state] += 1
            self._log.warning(
                "%s from room %s is %s: %s", charge.item, charge.room, charge.state, charge.error
            )
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
        charge = charge.moved("pending", error=None)
        await self._save(charge)
        self._failures.pop(key, None)
        self._due[key] = 0.0
        self._wake.set()
        self._log.info("Retrying the failed charge %s for %s, as staff asked", key, charge.item)
        return charge

    # The posting task

    async def run(self) -> None:
        pruned = time.monotonic()
        while True:
            now = time.monotonic()
            for key in sorted(k for k, due in self._due.items() if due <= now):
                await self._post(key)
            if now - pruned > _PRUNE_EVERY_S:
                await self._prune()
                pruned = now
            self._wake.clear()
            wait = min(self._due.values(), default=now + _PRUNE_EVERY_S) - time.monotonic()
            if wait > 0:
                try:
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _post(self, key: str) -> None:
        value = await self._store.get(PREFIX + key)
        charge = Charge.from_store(value) if value else None
        if charge is None or charge.state != "pending":
            self._due.pop(key, None)
            return
        try:
            await self._try(charge)
        except MewsRequestError as exc:
            await self._settle(charge.moved("failed", error=exc.message))
            self._log.error("Mews refused the charge for %s (%s): %s", charge.item, charge.key, exc.message)
        except MewsError as exc:
            self._failures[key] += 1
            delay = min(self._retry_max_s, self._retry_initial_s * 2 ** min(self._failures[key] - 1, 20))
            self._due[key] = time.monotonic() + delay * random.uniform(0.5, 1.0)
            self.last_error = str(exc)
            (self._log.warning if self._failures[key] == 1 else self._log.debug)(
                "Could not post the charge %s yet (%s); it is kept and retried", charge.key, exc
            )

    async def _try(self, charge: Charge) -> None:
        if charge.attempts:
            order_id = await self._posted_order(charge)
            if order_id is not None:
                await self._settle(charge.moved("posted", order_id=order_id))
                return
        assert charge.account_id is not None
        guests = await self._mews.get_customers([charge.account_id])
        if any(NO_POST in guest.classifications for guest in guests):
            await self._settle(charge.moved("refused", error="the guest is on the Cashlist (No Post)"))
            self._log.info(
                "Not charging %s to room %s: the guest is on the Cashlist", charge.item, charge.room
            )
            return
        # Durable before sending: if the answer is lost, the next try looks the order up first.
        charge = replace(charge, attempts=charge.attempts + 1)
        await self._save(charge)
        order = new_order(charge, self.service_id, self.pricing)
        result = await self._mews.call("orders/add", order.to_mews(), retry_budget_s=self._retry_max_s)
        await self._settle(charge.moved("posted", order_id=str(result["OrderId"])))
        self._log.info(
            "Posted %s to room %s: %s %s", charge.item, charge.room, charge.amount, charge.currency
        )

    async def _posted_order(self, charge: Charge) -> str | None:
        """The order Mews already has for this charge, from an earlier send whose answer was lost."""
        around = charge.start_utc
        window = {
            "StartUtc": (around - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "EndUtc": (around + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        items = await self._mews.pages(
            "orderItems/getAll",
            {"AccountIds": [charge.account_id], "ServiceIds": [self.service_id], "ConsumedUtc": window},
            "OrderItems",
        )
        found = next((i for i in items if i.get("ExternalIdentifier") == charge.key), None)
        return str(found.get("ServiceOrderId") or found.get("Id")) if found else None

    async def _settle(self, charge: Charge) -> None:
        await self._save(charge)
        self._due.pop(charge.key, None)
        self._failures.pop(charge.key, None)
        self.outcomes[charge.state] += 1

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
