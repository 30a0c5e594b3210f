"""Call credit: a guest whose open balance is over the limit has outside calls barred until it is not.

The balance is the guest's account in Mews (``customers/getOpenItems`` is deprecated): open order
items (``orderItems/getAll``) minus open charged payments (``payments/getAll``; Mews keeps payments as
negative amounts), both by ``AccountIds``, gross values in the property's currency. Two policies:

* ``limit``: barred while charges minus payments exceed ``credit_limit``;
* ``prepaid``: barred while payments minus charges are below zero (a deposit first, then calls).

A bar is AstDB ``<family>/<extension>/outside`` = ``0`` with the reason in ``.../barred``; the sample
dialplan then plays "please contact the reception" (emergency numbers never look at it). Bars are
kept in the journal, so they survive restarts.

A guest is checked at start and at check-in, after each charge posted to them, and a barred guest
again every ``credit_recheck_s``, so a deposit taken at the desk reopens the line within minutes. Checks are paced
(:data:`CHECK_SPACING_S`), two Mews requests each, so they never take more than a fixed share of the
shared request budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from mews_bridge import KeyValueStore, MewsClient, MewsError

from .occupancy import Occupancy
from .rooms import AstDbWrite, RoomMap

CreditPolicy = Literal["limit", "prepaid"]
PREFIX = "credit:"
"""Store key prefix of the bars, by reservation id."""
BARRED_KEY = "barred"
"""AstDB ``<family>/<extension>/barred``: why outside calls are barred (absent: not for credit)."""
CHECK_SPACING_S = 1.5
"""At most one check (two requests) every 1.5 s: 40 of Mews' 200 requests per 30 s, at worst."""
_RETRY_S = 60.0


@dataclass(frozen=True, slots=True)
class Balance:
    charges: Decimal
    """Open order items, gross."""
    payments: Decimal
    """Open charged payments, as a positive amount."""
    currency: str

    @property
    def open(self) -> Decimal:
        """What the guest owes now (negative: in credit)."""
        return self.charges - self.payments


def _gross(row: Mapping[str, Any], currency: str) -> Decimal:
    amount = row.get("Amount") or {}
    if amount.get("Currency", currency) != currency:
        return Decimal(0)  # another currency cannot be added up; Mews bills in the property's
    return Decimal(str(amount.get("GrossValue") or 0))


async def read_balance(mews: MewsClient, account_id: str, currency: str) -> Balance:
    """The account's open balance: two paginated requests (one page for any real stay)."""
    where = {"AccountIds": [account_id], "AccountingStates": ["Open"]}
    items = await mews.pages("orderItems/getAll", where, "OrderItems")
    payments = await mews.pages("payments/getAll", where, "Payments")
    return Balance(
        sum((_gross(i, currency) for i in items), Decimal(0)),
        -sum((_gross(p, currency) for p in payments if p.get("State") == "Charged"), Decimal(0)),
        currency,
    )


def bar_reason(policy: CreditPolicy, limit: Decimal, balance: Balance) -> str | None:
    """Why this balance bars outside calls, in words for staff; None if it does not."""
    cur = balance.currency
    if policy == "limit" and balance.open > limit:
        return f"open balance {balance.open:.2f} {cur} is over the credit limit of {limit:.2f} {cur}"
    if policy == "prepaid" and balance.payments - balance.charges < 0:
        return f"payments of {balance.payments:.2f} {cur} do not cover charges of {balance.charges:.2f} {cur}"
    return None


@dataclass(frozen=True, slots=True)
class Bar:
    """A guest whose outside calls are barred for credit."""

    reservation_id: str
    account_id: str
    room: str
    reason: str
    since: str
    checked: str

    @classmethod
    def from_store(cls, value: Mapping[str, Any]) -> Bar:
        return cls(**value)


def barred_phones(occupancy: Occupancy, rooms: RoomMap, reasons: Mapping[str, str]) -> dict[str, str]:
    """Extension → why its outside calls are barred, from the bars by reservation id."""
    barred: dict[str, str] = {}
    for stay in occupancy.in_house():
        room = occupancy.name_of(stay.resource_id)
        extension = rooms.extension_for(room) if room else None
        if stay.reservation_id in reasons and extension is not None:
            barred[extension] = reasons[stay.reservation_id]
    return barred


def with_credit_bars(
    writes: Iterable[AstDbWrite],
    current: Mapping[str, str],
    phones: Mapping[str, bool],
    barred: Mapping[str, str],
    family: str,
) -> list[AstDbWrite]:
    """The room phones' writes with credit bars laid over: ``phones`` maps each extension written to
    whether it is occupied, ``barred`` the barred extensions to the reason. Only what differs from
    ``current`` is written."""
    wanted = {write.path: write for write in writes}
    for extension, occupied in phones.items():
        room = f"{family}/{extension}"
        reason = barred.get(extension) if occupied else None
        wanted[f"/{room}/{BARRED_KEY}"] = AstDbWrite(room, BARRED_KEY, reason)
        if reason is not None:
            wanted[f"/{room}/outside"] = AstDbWrite(room, "outside", "0")
    return [write for write in wanted.values() if current.get(write.path) != write.value]


class CreditGuard:
    """Checks balances and keeps the bars; :meth:`run` is the checking task. ``changed`` is called with
    a reservation id whenever its bar is set or lifted (the service rewrites that room's AstDB)."""

    def __init__(
        self,
        mews: MewsClient,
        store: KeyValueStore,
        logger: logging.Logger,
        *,
        policy: CreditPolicy,
        limit: Decimal,
        currency: str,
        recheck_s: float,
        changed: Callable[[str], Awaitable[None]],
        spacing_s: float = CHECK_SPACING_S,
    ) -> None:
        self._mews = mews
        self._store = store
        self._log = logger
        self.policy = policy
        self.limit = limit
        self.currency = currency
        self.recheck_s = recheck_s
        self._changed = changed
        self._spacing_s = spacing_s
        self.bars: dict[str, Bar] = {}
        self._due: dict[str, tuple[float, str, str]] = {}
        """Reservation id → (when, monotonic; account id; room) of its next check."""
        self._wake = asyncio.Event()

    async def load(self) -> None:
        """The bars kept from before a restart, each checked again soon."""
        for value in (await self._store.items(PREFIX)).values():
            bar = Bar.from_store(value)
            self.bars[bar.reservation_id] = bar
            self._due[bar.reservation_id] = (0.0, bar.account_id, bar.room)

    def check_soon(self, reservation_id: str, account_id: str, room: str) -> None:
        """A charge was posted to this guest, or they arrived: check their balance next."""
        self._due[reservation_id] = (0.0, account_id, room)
        self._wake.set()

    def check_all(self, guests: Iterable[tuple[str, str, str]]) -> None:
        """Check every guest (reservation id, account id, room) not already due, one after the other
        behind any guest who is due now: the catch-up at start."""
        start = time.monotonic()
        for n, (reservation_id, account_id, room) in enumerate(g for g in guests if g[0] not in self._due):
            self._due[reservation_id] = (start + n * self._spacing_s, account_id, room)
        self._wake.set()

    async def sync(self, in_house: Mapping[str, str]) -> None:
        """Drop the bars and checks of guests no longer in house (reservation id → room)."""
        for reservation_id in [r for r in self._due if r not in in_house]:
            del self._due[reservation_id]
        for reservation_id in [r for r in self.bars if r not in in_house]:
            del self.bars[reservation_id]
            await self._store.delete(PREFIX + reservation_id)

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            due = sorted((when, rid) for rid, (when, _, _) in self._due.items() if when <= now)
            if due:
                await self.check(due[0][1])
                await asyncio.sleep(self._spacing_s)
                continue
            self._wake.clear()
            wait = min((when for when, _, _ in self._due.values()), default=now + 3600.0) - now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.0)):
                    await self._wake.wait()

    async def check(self, reservation_id: str) -> None:
        """Read the balance and bar or lift; a Mews fault is tried again a minute later."""
        _, account_id, room = self._due.pop(reservation_id, (0.0, "", ""))
        if not account_id:
            return
        try:
            balance = await read_balance(self._mews, account_id, self.currency)
        except MewsError as exc:
            self._log.warning("Could not read the balance of room %s (%s); trying again", room, exc)
            self._due[reservation_id] = (time.monotonic() + _RETRY_S, account_id, room)
            return
        reason = bar_reason(self.policy, self.limit, balance)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        before = self.bars.get(reservation_id)
        if reason is None:
            if before is not None:
                del self.bars[reservation_id]
                await self._store.delete(PREFIX + reservation_id)
                self._log.info("Outside calls of room %s are open again: balance %s", room, balance.open)
                await self._changed(reservation_id)
            return
        bar = Bar(reservation_id, account_id, room, reason, before.since if before else now, now)
        self.bars[reservation_id] = bar
        await self._store.put(PREFIX + reservation_id, asdict(bar))
        self._due[reservation_id] = (time.monotonic() + self.recheck_s, account_id, room)
        if before is None or before.reason != reason:
            if before is None:
                self._log.warning("Outside calls of room %s are barred: %s", room, reason)
            await self._changed(reservation_id)
