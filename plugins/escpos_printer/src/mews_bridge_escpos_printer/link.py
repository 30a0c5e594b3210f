"""One connection to the printer for the length of a job: writes and status round trips."""

from __future__ import annotations

import asyncio
from types import TracebackType

from . import status
from .options import Link
from .status import PrinterStatus, StatusKind
from .transport import LinkTimeout, Transport, make_transport


class PrinterConnection:
    """Opened per job (and by setup's probe), so that a network printer is free for other clients
    between jobs and a power-cycled printer never leaves a stale connection behind."""

    def __init__(self, link: Link, timeout: float, *, check_status: bool) -> None:
        self.timeout = timeout
        self.transport: Transport = make_transport(link, timeout)
        self.reads_status = check_status and self.transport.can_read
        self.sent = False
        """Whether anything was written (and so might have arrived only in part)."""

    async def __aenter__(self) -> PrinterConnection:
        await self.transport.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.transport.close()

    async def write(self, data: bytes) -> None:
        self.sent = True
        await self.transport.write(data)

    async def status(self) -> PrinterStatus | None:
        """Ask DLE EOT 1, 2 and 4 (and 3 on an error); None where the link or settings rule it out.

        A printer answers these in real time, as soon as it receives them: after everything sent
        before them has been taken, but before it is printed.
        """
        if not self.reads_status:
            return None
        replies = dict(zip(status.ROUTINE_KINDS, await self._ask(status.ROUTINE_KINDS), strict=True))
        found = status.decode(replies)
        if found.error:
            (replies[StatusKind.ERROR_CAUSE],) = await self._ask((StatusKind.ERROR_CAUSE,))
            found = status.decode(replies)
        return found

    async def _ask(self, kinds: tuple[StatusKind, ...]) -> list[int]:
        await self.transport.discard_input()
        await self.write(status.request(*kinds))
        replies: list[int] = []
        try:
            async with asyncio.timeout(self.timeout):
                while len(replies) < len(kinds):
                    replies.extend(byte for byte in await self.transport.read() if status.is_reply(byte))
        except TimeoutError:
            raise LinkTimeout(f"no answer to a status request within {self.timeout:g} s") from None
        return replies[: len(kinds)]
