"""The picture of a running bridge that the status page, ``/status.json``, ``/metrics`` and
``mews-bridge status`` show: the Mews link, each device and service, charges and the last commands.

Drivers and services add what they know through :meth:`~mews_bridge.Instance.status` (a few facts:
paper state, link up, last receipt). A service that posts charges to guests' bills implements
:class:`PostsCharges`, which lists them and lets staff retry a failed one from the page. Every text
shown passes the redactor: no secret reaches a page, a JSON answer or a terminal.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .journal import CommandRecord
from .lifecycle import InstanceState
from .metrics import LINK
from .redaction import redact_data, redactor
from .version import __version__

if TYPE_CHECKING:
    from .bridge import Bridge
    from .lifecycle import ManagedInstance

RECENT_COMMANDS = 50
CHARGE_STATES = ("pending", "posted", "refused", "unassigned", "failed")


@dataclass(frozen=True)
class ChargeLine:
    """One charge as the page lists it."""

    key: str
    state: str
    at: str
    """When the charged thing happened (call start), ISO 8601 UTC."""
    room: str | None
    item: str
    amount: str
    currency: str
    detail: str | None
    """Why it was refused or failed, or how many tries a pending one had."""
    updated: str
    retryable: bool = False


@dataclass(frozen=True)
class ChargeBook:
    """A service's charges: counts by state (``posted`` counts today's only), the ones needing eyes
    (pending, failed, refused, unassigned: newest first) and outcomes since the bridge started."""

    service: str
    counts: dict[str, int]
    lines: list[ChargeLine]
    since_start: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class PostsCharges(Protocol):
    """A service that posts charges to guests' bills (the PBX's call charges)."""

    async def charge_book(self) -> ChargeBook: ...

    async def retry_charge(self, key: str) -> str:
        """Send a failed charge again; return what happened in plain words (shown to staff).

        Raise ``LookupError`` for an unknown key and ``ValueError`` when it cannot be retried.
        """
        ...


@dataclass(frozen=True)
class LastCommand:
    id: str
    device: str
    state: str
    """queued, running, or the final state (Processed, Error, Cancelled…)."""
    notes: str | None
    received_at: str
    duration_s: float | None

    @classmethod
    def from_record(cls, record: CommandRecord) -> LastCommand:
        duration = None
        if record.started_at and record.finished_at:
            started = datetime.fromisoformat(record.started_at)
            duration = (datetime.fromisoformat(record.finished_at) - started).total_seconds()
        state = record.final_state if record.phase in ("finished", "acknowledged") else record.phase
        return cls(
            id=record.id,
            device=record.device_name,
            state=state or record.phase,
            notes=redactor.redact(record.notes) if record.notes else None,
            received_at=record.received_at,
            duration_s=duration,
        )


@dataclass(frozen=True)
class InstanceStatus:
    name: str
    kind: str
    implementation: str
    state: str
    reason: str | None
    queued: int
    busy: bool
    last_command: LastCommand | None
    facts: dict[str, Any]
    """What the driver or service knows (its :meth:`~mews_bridge.Instance.status`), secrets masked."""


@dataclass(frozen=True)
class MewsStatus:
    connected: bool
    connected_since: str | None
    last_event_at: str | None
    window_requests: int
    window_limit: int
    throttled_today: int
    last_error: str | None
    last_error_at: str | None


@dataclass(frozen=True)
class BridgeStatus:
    version: str
    taken_at: str
    started_at: str
    ready: bool
    mews: MewsStatus
    instances: list[InstanceStatus]
    charges: list[ChargeBook]
    commands: list[LastCommand]
    waiting_for_mews: int
    journal_bytes: int
    loop_blocked_incidents: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_ready(bridge: Bridge) -> bool:
    """Mews connected and every configured device and service set up."""
    connected = bridge.stream is not None and bridge.stream.connected.is_set()
    return connected and all(m.state is InstanceState.LOADED for m in bridge.instances)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _mews_status(bridge: Bridge) -> MewsStatus:
    limiter = bridge.mews.limiter if bridge.mews is not None else None
    today = datetime.now(UTC).date()
    return MewsStatus(
        connected=bridge.stream is not None and bridge.stream.connected.is_set(),
        connected_since=_iso(LINK.connected_since),
        last_event_at=_iso(LINK.last_event_at),
        window_requests=limiter.in_window() if limiter else 0,
        window_limit=limiter.limit if limiter else 0,
        throttled_today=LINK.throttled_today if LINK.throttled_day == today else 0,
        last_error=LINK.last_error,
        last_error_at=_iso(LINK.last_error_at),
    )


async def _facts(managed: ManagedInstance) -> dict[str, Any]:
    if managed.state is not InstanceState.LOADED or managed.instance is None:
        return {}
    try:
        facts = await managed.instance.status()
    except Exception as exc:  # a plugin's fault must not take the page down
        return {"status": f"could not be read ({type(exc).__name__})"}
    return redact_data(facts, managed.cls.secret_options)


async def take(bridge: Bridge) -> BridgeStatus:
    """The status of ``bridge`` now."""
    queues = {worker.name: worker for worker in bridge.pipeline.workers} if bridge.pipeline else {}
    last: dict[str, LastCommand] = {}
    commands: list[LastCommand] = []
    if bridge.journal is not None:
        commands = [LastCommand.from_record(r) for r in await bridge.journal.recent(RECENT_COMMANDS)]
        last = {r.device_name: LastCommand.from_record(r) for r in await bridge.journal.latest_per_device()}
    instances = []
    books = []
    for managed in bridge.instances:
        worker = queues.get(managed.name)
        instances.append(
            InstanceStatus(
                name=managed.name,
                kind=managed.kind,
                implementation=managed.cls.name,
                state=managed.state.value,
                reason=redactor.redact(managed.reason) if managed.reason else None,
                queued=worker.queue.qsize() if worker else 0,
                busy=bool(worker and worker.current is not None),
                last_command=last.get(managed.name),
                facts=await _facts(managed),
            )
        )
        if managed.state is InstanceState.LOADED and isinstance(managed.instance, PostsCharges):
            try:
                books.append(await managed.instance.charge_book())
            except Exception:  # shown as missing; the service's own log says why
                books.append(ChargeBook(managed.name, {}, []))
    pipeline = bridge.pipeline.status() if bridge.pipeline else {}
    return BridgeStatus(
        version=__version__,
        taken_at=_iso(datetime.now(UTC)) or "",
        started_at=_iso(bridge.started_at) or "",
        ready=is_ready(bridge),
        mews=_mews_status(bridge),
        instances=instances,
        charges=books,
        commands=commands,
        waiting_for_mews=int(pipeline.get("waiting_for_mews", 0)),
        journal_bytes=_journal_bytes(bridge),
        loop_blocked_incidents=bridge.watchdog.incidents,
    )


def _journal_bytes(bridge: Bridge) -> int:
    if bridge.journal is None:
        return 0
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += os.stat(f"{bridge.journal.path}{suffix}").st_size
    return total


async def retry_charge(bridge: Bridge, service: str, key: str) -> str:
    """Retry a failed charge of the named service; the plain-words outcome, or raise ``LookupError``
    (no such service or charge) or ``ValueError`` (it cannot be retried)."""
    managed = next((m for m in bridge.instances if m.name == service), None)
    if managed is None or not isinstance(managed.instance, PostsCharges):
        raise LookupError(f"No service called {service!r} posts charges here.")
    return await managed.instance.retry_charge(key)
