"""The Connector API client: one per bridge, shared by the core and every plugin.

Every operation is a POST of a JSON envelope (ClientToken, AccessToken, Client) plus parameters.
Requests pass a process-wide sliding-window limiter first, so normal work stays under Mews' limit.

Mews makes no write idempotent, so every operation is classed as safe to repeat or not
(:func:`is_repeatable`). Reads and ``commands/update`` are retried through 408, 429, 5xx and network
faults with capped exponential backoff and jitter (429 honours ``Retry-After``) within a time budget,
then raise :class:`MewsUnavailable`. A write that creates something (``orders/add``, ``tasks/add``) is
retried only when it provably never reached Mews (429, connection refused, DNS, connect timeout);
after a fault that leaves its outcome unknown it raises :class:`MewsOutcomeUnknown` at once and the
caller looks up whether it landed. 401 raises :class:`MewsAuthError`; other refusals raise
:class:`MewsRequestError` with Mews' own message. A paged read answered 408 asks for smaller pages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from .. import metrics
from ..settings import MewsSettings
from .enterprise import Enterprise
from .errors import MewsAuthError, MewsError, MewsOutcomeUnknown, MewsRequestError, MewsUnavailable
from .models import (
    AccountingCategory,
    Bill,
    Companionship,
    Customer,
    Device,
    DeviceCommand,
    NewOrder,
    OrderItem,
    Payment,
    Product,
    Reservation,
    Resource,
    Service,
    Taxations,
    TaxEnvironment,
)
from .ratelimit import SlidingWindowLimiter, limiter_for

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
MAX_IDS = 1000
MIN_PAGE = 10
"""Smallest page a paged read shrinks to after 408s."""
_PAGES_TO_GROW = 5
"""Pages that must succeed in a row before a shrunk page size doubles again."""
_UNKNOWN_OUTCOME_STATUSES = frozenset({408, 500, 502, 503, 504})
_NOT_SENT_FAULTS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Network faults raised before a byte of the request left (DNS is a ConnectError in httpx)."""
REPEATABLE_WRITES = frozenset({"commands/update", "resources/update"})
"""Writes that leave Mews as they found it when they land twice: a command or a room set to the same
state."""


def is_repeatable(operation: str) -> bool:
    """Whether ``operation`` may be sent again when its outcome is unknown: reads (``…/get…``) and
    :data:`REPEATABLE_WRITES`. Everything else may create something twice (``orders/add``)."""
    _, _, action = operation.partition("/")
    return action.startswith("get") or operation in REPEATABLE_WRITES


class _Retryable(MewsUnavailable):
    def __init__(self, *args: Any, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


class _TooHeavy(MewsUnavailable):
    """408 on a paged read: ask for a smaller page rather than the same one again."""


class _RetryAfterOrBackoff:
    """Wait what a 429's ``Retry-After`` asks for, else capped exponential backoff with jitter."""

    def __init__(self, max_s: float) -> None:
        self._max_s = max_s
        self._backoff = wait_exponential_jitter(multiplier=0.5, max=max_s, jitter=0.5)

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self._max_s)
        return self._backoff(retry_state)


def _chunks(ids: Sequence[str], size: int = MAX_IDS) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


class MewsClient:
    def __init__(
        self,
        settings: MewsSettings,
        *,
        retry_budget_s: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.retry_budget_s = retry_budget_s
        self.tls = httpx.create_ssl_context()
        """Certificates and host names verified (httpx's trust store); the event stream uses it too,
        since each context holds its own copy of the CA certificates (about 1 MB)."""
        self._http = httpx.AsyncClient(
            base_url=f"{settings.platform_url}/api/connector/v1/",
            verify=self.tls,
            timeout=settings.request_timeout_s,
            transport=transport,
            headers={"User-Agent": settings.client.replace(" ", "/", 1)},
        )
        self._limiter: SlidingWindowLimiter | None = None
        self._enterprise: Enterprise | None = None
        self._page_sizes: dict[str, tuple[int, int]] = {}
        """Operation → (page size after 408s, pages since it last changed)."""
        self.requests_sent = 0
        """HTTP requests sent, retries included (benchmarks report it)."""
        self._unreadable: set[str] = set()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> MewsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def limiter(self) -> SlidingWindowLimiter:
        if self._limiter is None:
            self._limiter = limiter_for(
                self.settings.access_token.get_secret_value(),
                self.settings.requests_per_30s,
                self.settings.rate_window_s,
            )
        return self._limiter

    # -- transport ---------------------------------------------------------------------------------

    async def call(
        self,
        operation: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        retry_budget_s: float | None = None,
        shrink_on_408: bool = False,
    ) -> dict[str, Any]:
        """POST ``operation`` (``commands/getAllActive``) with the envelope and return the JSON result.

        Raises :class:`MewsOutcomeUnknown` when an operation that is not :func:`is_repeatable` may
        have landed without an answer; it is never sent a second time here."""
        body = {
            "ClientToken": self.settings.client_token.get_secret_value(),
            "AccessToken": self.settings.access_token.get_secret_value(),
            "Client": self.settings.client,
            **(parameters or {}),
        }
        budget = self.retry_budget_s if retry_budget_s is None else retry_budget_s
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retryable),
            wait=_RetryAfterOrBackoff(self.settings.max_retry_s),
            stop=stop_after_delay(budget),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._send(operation, body, shrink_on_408=shrink_on_408)
        except _Retryable as exc:
            raise MewsUnavailable(operation, exc.message, exc.status, exc.request_id) from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity either returns or raises

    async def _send(self, operation: str, body: dict[str, Any], *, shrink_on_408: bool) -> dict[str, Any]:
        repeatable = is_repeatable(operation)
        # An unknown outcome is retried only where landing twice does no harm.
        unknown = _Retryable if repeatable else MewsOutcomeUnknown
        await self.limiter.acquire()
        self.requests_sent += 1
        try:
            response = await self._http.post(operation, json=body)
        except httpx.TransportError as exc:
            fault = f"network fault ({type(exc).__name__})"
            metrics.mews_answered(operation, "network", fault)
            if isinstance(exc, _NOT_SENT_FAULTS):
                log.warning("Mews %s: %s before the request left; retrying", operation, fault)
                raise _Retryable(operation, fault) from None
            log.warning("Mews %s: %s; the request may have reached Mews", operation, fault)
            raise unknown(operation, fault + "; the request may have reached Mews") from None
        request_id = response.headers.get("Request-Id")
        if response.is_success:
            metrics.mews_answered(operation, response.status_code)
        if response.status_code == 204:
            self.limiter.answered()
            return {}
        if response.is_success:
            self.limiter.answered()
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise unknown(operation, "the answer was not a JSON object", response.status_code, request_id)
            return answer
        message = _error_message(response)
        status = response.status_code
        metrics.mews_answered(operation, status, message)
        log.warning("Mews %s failed: HTTP %s %s (Request-Id %s)", operation, status, message, request_id)
        if status == 429:
            # Mews refuses a limited request before doing anything, so it is always safe to repeat.
            pause = self.limiter.throttled(_retry_after(response), self.settings.max_retry_s)
            raise _Retryable(operation, message, status, request_id, retry_after=pause)
        if status == 408 and shrink_on_408:
            raise _TooHeavy(operation, message, status, request_id)
        if status in _UNKNOWN_OUTCOME_STATUSES:
            raise unknown(operation, message, status, request_id)
        if status == 401:
            raise MewsAuthError(
                operation,
                "Mews refused the tokens (check mews.client_token and mews.access_token): " + message,
                401,
                request_id,
            )
        raise MewsRequestError(operation, message, status, request_id)

    async def pages(
        self, operation: str, parameters: Mapping[str, Any], key: str, *, count: int = MAX_IDS
    ) -> list[dict[str, Any]]:
        """Every item of a paginated operation, following ``Cursor`` until a short or empty page.

        A 408 (too heavy) halves the page size down to :data:`MIN_PAGE`; it doubles back towards
        ``count`` after :data:`_PAGES_TO_GROW` pages in a row succeed. The size is kept per operation."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            size, grown = self._page_sizes.get(operation, (count, 0))
            size = min(size, count)
            limitation: dict[str, Any] = {"Count": size}
            if cursor:
                limitation["Cursor"] = cursor
            try:
                result = await self.call(
                    operation, {**parameters, "Limitation": limitation}, shrink_on_408=size > MIN_PAGE
                )
            except _TooHeavy:
                smaller = max(MIN_PAGE, size // 2)
                log.info("Mews %s: too heavy at %d a page; asking for %d", operation, size, smaller)
                self._page_sizes[operation] = (smaller, 0)
                continue
            if size < count:
                grown += 1
                self._page_sizes[operation] = (
                    (min(count, size * 2), 0) if grown >= _PAGES_TO_GROW else (size, grown)
                )
            page = result.get(key) or []
            items.extend(page)
            cursor = result.get("Cursor")
            if not cursor or len(page) < size:
                return items

    async def _by_ids(
        self, operation: str, id_field: str, ids: Sequence[str], key: str, model: type[M], **parameters: Any
    ) -> list[M]:
        found: list[M] = []
        for chunk in _chunks(list(dict.fromkeys(ids))):
            found += [
                model.model_validate(x)
                for x in await self.pages(operation, {id_field: chunk, **parameters}, key)
            ]
        return found

    # -- device commands ---------------------------------------------------------------------------

    async def get_active_commands(self) -> list[DeviceCommand]:
        """Active commands; one that does not fit the model has ``problem`` set (see ``from_mews``)."""
        result = await self.call("commands/getAllActive")
        return self._commands(result)

    async def get_commands_by_ids(self, command_ids: Sequence[str]) -> list[DeviceCommand]:
        """Commands in any state; up to 1000 ids a request. Unknown ids are left out."""
        commands: list[DeviceCommand] = []
        for chunk in _chunks(list(dict.fromkeys(command_ids))):
            result = await self.call("commands/getAllByIds", {"CommandIds": chunk})
            commands += self._commands(result)
        return commands

    def _commands(self, result: Mapping[str, Any]) -> list[DeviceCommand]:
        raw = result.get("Commands")
        commands = []
        for item in raw if isinstance(raw, list) else []:
            command = DeviceCommand.from_mews(item)
            if command is not None:
                commands.append(command)
            elif (
                ident := repr(item.get("Id") if isinstance(item, dict) else item)[:80]
            ) not in self._unreadable:
                # Nothing can be sent back without a usable id: say so once, never retry it.
                if len(self._unreadable) >= 10_000:
                    self._unreadable.clear()
                self._unreadable.add(ident)
                log.error("Skipped a command from Mews without a usable Id (%s)", ident)
        return commands

    async def update_command(
        self,
        command_id: str,
        state: str,
        *,
        progress: float | None = None,
        notes: str | None = None,
        retry_budget_s: float | None = None,
    ) -> None:
        parameters: dict[str, Any] = {"CommandId": command_id, "State": state}
        if progress is not None:
            parameters["Progress"] = round(progress, 3)
        if notes is not None:
            parameters["Notes"] = notes
        await self.call("commands/update", parameters, retry_budget_s=retry_budget_s)

    async def get_devices(self) -> list[Device]:
        result = await self.call("devices/getAll")
        return [Device.model_validate(d) for d in result.get("Devices") or []]

    # -- property ----------------------------------------------------------------------------------

    async def get_configuration(self) -> dict[str, Any]:
        return await self.call("configuration/get")

    async def enterprise(self) -> Enterprise:
        """The property's settings, read once and kept."""
        if self._enterprise is None:
            self._enterprise = Enterprise.from_configuration(await self.get_configuration())
        return self._enterprise

    async def get_services(self) -> list[Service]:
        return [Service.model_validate(s) for s in await self.pages("services/getAll", {}, "Services")]

    async def get_accounting_categories(self) -> list[AccountingCategory]:
        # Inactive ones too, so that a setting naming one can be refused as inactive, not as unknown.
        everything = {"ActivityStates": ["Active", "Deleted"]}
        found = await self.pages("accountingCategories/getAll", everything, "AccountingCategories")
        return [AccountingCategory.model_validate(c) for c in found]

    async def get_resources(
        self,
        resource_ids: Sequence[str] | None = None,
        *,
        updated_utc: tuple[datetime, datetime] | None = None,
    ) -> list[Resource]:
        """Active resources (rooms): those of ``resource_ids``, or those Mews changed within
        ``updated_utc``, or every one."""
        extent: dict[str, Any] = {"Extent": {"Resources": True, "Inactive": False}}
        if updated_utc is not None:
            extent["UpdatedUtc"] = _interval(updated_utc)
        if resource_ids is not None:
            return await self._by_ids(
                "resources/getAll", "ResourceIds", resource_ids, "Resources", Resource, **extent
            )
        return [Resource.model_validate(r) for r in await self.pages("resources/getAll", extent, "Resources")]

    async def get_tax_environments(self) -> list[TaxEnvironment]:
        result = await self.call("taxEnvironments/getAll")
        return [TaxEnvironment.model_validate(t) for t in result.get("TaxEnvironments") or []]

    async def get_taxations(self) -> Taxations:
        return Taxations.model_validate(await self.call("taxations/getAll"))

    async def get_products(self, service_ids: Sequence[str]) -> list[Product]:
        return await self._by_ids("products/getAll", "ServiceIds", service_ids, "Products", Product)

    # -- guests ------------------------------------------------------------------------------------

    async def get_reservations(
        self,
        *,
        reservation_ids: Sequence[str] | None = None,
        assigned_resource_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        updated_utc: tuple[datetime, datetime] | None = None,
    ) -> list[Reservation]:
        """Reservations (version 2023-06-06) matching every filter given."""
        parameters: dict[str, Any] = {}
        if states is not None:
            parameters["States"] = list(states)
        if assigned_resource_ids is not None:
            parameters["AssignedResourceIds"] = list(assigned_resource_ids)
        if updated_utc is not None:
            parameters["UpdatedUtc"] = _interval(updated_utc)
        operation = "reservations/getAll/2023-06-06"
        if reservation_ids is not None:
            return await self._by_ids(
                operation, "ReservationIds", reservation_ids, "Reservations", Reservation, **parameters
            )
        return [
            Reservation.model_validate(r) for r in await self.pages(operation, parameters, "Reservations")
        ]

    async def get_customers(
        self,
        customer_ids: Sequence[str] | None = None,
        *,
        updated_utc: tuple[datetime, datetime] | None = None,
    ) -> list[Customer]:
        """Customers: those of ``customer_ids``, or every one Mews changed within ``updated_utc``."""
        extent = {"Extent": {"Customers": True, "Addresses": False}}
        if customer_ids is not None:
            return await self._by_ids(
                "customers/getAll", "CustomerIds", customer_ids, "Customers", Customer, **extent
            )
        if updated_utc is None:
            raise ValueError("get_customers needs customer_ids or updated_utc")
        changed = await self.pages(
            "customers/getAll", {**extent, "UpdatedUtc": _interval(updated_utc)}, "Customers"
        )
        return [Customer.model_validate(c) for c in changed]

    async def get_companionships(self, reservation_ids: Sequence[str]) -> list[Companionship]:
        """Who stays in these reservations: the guests in the room, whoever owns the reservation."""
        return await self._by_ids(
            "companionships/getAll", "ReservationIds", reservation_ids, "Companionships", Companionship
        )

    async def add_order(self, order: NewOrder) -> str:
        """Post an order (a call charge) and return its id."""
        result = await self.call("orders/add", order.to_mews())
        return str(result["OrderId"])

    async def add_task(
        self,
        name: str,
        description: str,
        *,
        deadline: datetime,
        service_order_id: str | None = None,
        department_id: str | None = None,
    ) -> str:
        """Put a task in front of staff inside Mews (for ``department_id`` if given) and return its id.
        Not safe to repeat: after :class:`MewsOutcomeUnknown` the task may exist."""
        parameters: dict[str, Any] = {"Name": name, "Description": description, "DeadlineUtc": _utc(deadline)}
        if service_order_id is not None:
            parameters["ServiceOrderId"] = service_order_id
        if department_id is not None:
            parameters["DepartmentId"] = department_id
        result = await self.call("tasks/add", parameters)
        return str(result["TaskId"])

    # -- bills -------------------------------------------------------------------------------------

    async def get_bills(self, bill_ids: Sequence[str]) -> list[Bill]:
        return await self._by_ids("bills/getAll", "BillIds", bill_ids, "Bills", Bill)

    async def get_order_items(self, *, bill_ids: Sequence[str]) -> list[OrderItem]:
        return await self._by_ids("orderItems/getAll", "BillIds", bill_ids, "OrderItems", OrderItem)

    async def get_payments(self, *, bill_ids: Sequence[str]) -> list[Payment]:
        return await self._by_ids("payments/getAll", "BillIds", bill_ids, "Payments", Payment)


def _interval(window: tuple[datetime, datetime]) -> dict[str, str]:
    return {"StartUtc": _utc(window[0]), "EndUtc": _utc(window[1])}


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    return (
        str(body.get("Message") or response.reason_phrase)
        if isinstance(body, dict)
        else response.reason_phrase
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (moment - datetime.now(moment.tzinfo)).total_seconds())


__all__ = [
    "MewsAuthError",
    "MewsClient",
    "MewsError",
    "MewsOutcomeUnknown",
    "MewsRequestError",
    "MewsUnavailable",
    "is_repeatable",
]
