"""The ``serial_keycutter`` driver: Mews ``KeyCutter`` commands to an Industry Standard lock encoder."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from mews_bridge import (
    CommandFailed,
    CommandJob,
    CommandRejected,
    DeviceConfigError,
    DeviceDriver,
    DeviceNotReady,
    KeyCutterData,
)

from .dialects import Dialect, KeyMode, KeyRequest, get_dialect
from .keys import KeyLedger, KeyPlan, describe_keys, plan_keys, rooms_text
from .link import Link, LinkError, LinkTimings
from .options import KeycutterOptions
from .transport import SerialTransport

REJECTING_CODES = frozenset({"TD", "OS"})
"""Encoder errors that mean the command's data is wrong for the lock system, not the device."""


class SerialKeycutterDriver(DeviceDriver[KeycutterOptions]):
    name = "serial_keycutter"
    device_type = "KeyCutter"
    replay_safe = False  # cutting twice voids cards or hands out extra keys
    Options: ClassVar[type[KeycutterOptions]] = KeycutterOptions

    dialect: Dialect
    link: Link
    _ledger: KeyLedger
    _last_error: str | None = None

    async def setup(self) -> None:
        options = self.options
        self.dialect = get_dialect(options.dialect)
        self._ledger = KeyLedger(self.ctx.store)
        await self._ledger.load()
        transport = SerialTransport(
            options.port,
            baudrate=options.baudrate,
            parity=options.parity,
            rtscts=options.rtscts,
            name=self.ctx.name,
        )
        self.link = Link(
            transport,
            LinkTimings(ack_timeout_s=options.ack_timeout_s, attempts=options.attempts),
            enq_before_send=options.enq_before_send,
        )
        try:
            await self.link.probe()
        except ValueError as exc:
            await transport.close()
            raise DeviceConfigError(f"{self.ctx.name}: port {options.port!r}: {exc}") from exc
        except LinkError as exc:
            await transport.close()
            raise DeviceNotReady(f"{self.ctx.name}: {exc}") from exc

    async def unload(self) -> None:
        await self.link.transport.close()

    async def diagnostics(self) -> dict[str, Any]:
        return {
            "port": self.options.port,
            "dialect": self.options.dialect,
            "encoder": self.options.encoder,
            "port_open": self.link.transport.is_open,
            "last_error": self._last_error,
        }

    async def status(self) -> dict[str, Any]:
        return {
            "encoder_link": "open" if self.link.transport.is_open else "closed",
            "encoder_last_error": self._last_error,
        }

    async def execute(self, job: CommandJob[KeyCutterData]) -> str | None:
        data = job.data
        now = datetime.now(UTC)
        tz = (
            ZoneInfo(self.options.timezone)
            if self.options.timezone
            else (await self.ctx.enterprise()).timezone
        )
        plan = plan_keys(data, dialect=self.dialect, options=self.options, tz=tz, now=now)
        first = plan.forced_mode
        if first is None:
            first = (
                KeyMode.COPY if self._ledger.can_copy(plan.reservation_id, plan.rooms, now) else KeyMode.NEW
            )
        self.ctx.logger.info(
            "Command %s, reservation %s, rooms %s: %d key(s), first one %s%s",
            job.id,
            plan.reservation_id or "(none)",
            ", ".join(plan.rooms),
            plan.count,
            first,
            " (forced by KeyCutterData)" if plan.forced_mode else "",
        )
        await self._ledger.command_started(job.id, plan.rooms, plan.count)
        cut = {KeyMode.NEW: 0, KeyMode.COPY: 0}
        try:
            for request in plan.requests(first):
                done = await self._cut(job, plan, request, cut_before=sum(cut.values()))
                cut[done.mode] += done.count
                await self._ledger.command_update(job.id, new=cut[KeyMode.NEW], copies=cut[KeyMode.COPY])
        except (CommandFailed, CommandRejected) as exc:
            notes = exc.notes
            if any(cut.values()):
                missing = plan.count - sum(cut.values())
                made = describe_keys(plan.rooms, cut[KeyMode.NEW], cut[KeyMode.COPY])
                keys = "key" if missing == 1 else "keys"
                notes = (
                    f"{notes}. Cut before that: {made}; issue a new command for the {missing} missing {keys}"
                )
            self._last_error = notes
            await self._ledger.command_update(job.id, state="failed", notes=notes)
            raise type(exc)(notes) from exc
        notes = describe_keys(plan.rooms, cut[KeyMode.NEW], cut[KeyMode.COPY])
        await self._ledger.command_update(job.id, state="completed", notes=notes)
        return notes

    async def recover(self, job: CommandJob[Any]) -> str | None:
        record = self._ledger.command(job.id)
        if record is None:
            return await super().recover(job)
        if record["state"] == "completed":
            return record["notes"]
        if record["state"] == "failed":
            raise CommandFailed(record["notes"])
        confirmed = record.get("new", 0) + record.get("copies", 0)
        raise CommandFailed(
            f"{self.ctx.name} was interrupted while cutting {record['count']} key(s) for "
            f"{rooms_text(tuple(record['rooms']))}; {confirmed} were confirmed. "
            "Try the cards at the door and issue the command again for any missing key."
        )

    async def _cut(
        self, job: CommandJob[Any], plan: KeyPlan, request: KeyRequest, *, cut_before: int
    ) -> KeyRequest:
        """Run one encoder transaction; return the request as carried out (a refused copy becomes new)."""
        where = rooms_text(request.rooms)
        try:
            frame = self.dialect.encode_request(request)
        except ValueError as exc:
            raise CommandRejected(f"{self.ctx.name}: {exc}; no key was cut for {where}") from exc
        previous = await self._ledger.release(request.rooms) if request.mode is KeyMode.NEW else {}
        reply_timeout = self.options.card_timeout_s * request.count

        async def waiting(seconds: float) -> None:
            # The reply comes once staff have inserted every card: count the wait as progress.
            share = min(seconds / reply_timeout, 0.95) * request.count
            await job.progress((cut_before + share) / plan.count)

        try:
            raw = await self.link.transact(frame, reply_timeout_s=reply_timeout, on_wait=waiting)
        except LinkError as exc:
            if exc.delivered:
                raise self._unsure(exc, where) from exc
            await self._ledger.restore(previous)
            raise CommandFailed(f"{self.ctx.name}: {exc}; no key was cut for {where}") from exc
        try:
            reply = self.dialect.decode_reply(raw)
        except ValueError as exc:
            self.ctx.logger.warning("Unreadable reply %s (%s)", raw.hex(" "), exc)
            raise self._unsure("The encoder's reply could not be read", where) from exc

        error = self.dialect.error_text(reply)
        if error is None:
            if request.mode is KeyMode.NEW:
                await self._ledger.record_new(plan.reservation_id, request.rooms, plan.valid_until)
            else:
                await self._ledger.record_copy(plan.reservation_id, request.rooms, plan.valid_until)
            return request

        await self._ledger.restore(previous)
        if request.mode is KeyMode.COPY and reply.code == self.dialect.copy_refused_code:
            # No current guest for the room in the lock system, so a new key voids nobody's card.
            self.ctx.logger.warning(
                "Copy refused for %s (%s: %s); cutting a new key", where, reply.code, error
            )
            return await self._cut(job, plan, replace(request, mode=KeyMode.NEW), cut_before=cut_before)
        error_class = CommandRejected if reply.code in REJECTING_CODES else CommandFailed
        raise error_class(f"{self.ctx.name}: {error} ({reply.code}), {where}")

    def _unsure(self, reason: object, where: str) -> CommandFailed:
        # The encoder took the request, so keys may exist: say so rather than invite a blind re-run.
        return CommandFailed(
            f"{self.ctx.name}: {reason}. A key for {where} may have been cut anyway: "
            "try it at the door before cutting another"
        )
