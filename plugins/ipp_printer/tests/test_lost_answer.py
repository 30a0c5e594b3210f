"""The answer to Print-Job lost on the way back (the connection drops after ippeveprinter took the job):
the printer's job list is asked, and the job is followed instead of being sent a second time."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from mews_bridge.testing import wait_for_final_state


class DroppingProxy:
    """TCP on loopback to the printer; the first connection that carries a PDF gets its answer dropped."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.dropped = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> DroppingProxy:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _connection(self, client_reader, client_writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        carries_pdf = asyncio.Event()

        async def upstream() -> None:
            while data := await client_reader.read(65536):
                if b"%PDF-" in data:
                    carries_pdf.set()
                server_writer.write(data)
                await server_writer.drain()

        async def downstream() -> None:
            while data := await server_reader.read(65536):
                if carries_pdf.is_set() and self.dropped == 0:
                    self.dropped += 1
                    return  # the printer answered; the bridge never hears it
                client_writer.write(data)
                await client_writer.drain()

        pumps = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_writer, server_writer):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            self._tasks.discard(task)


async def test_a_lost_print_job_answer_is_looked_up_not_sent_again(
    mews_simulator, bridge_harness, add_printer, ippeveprinter, card_pdf, encode
):
    printer = ippeveprinter()
    proxy = DroppingProxy(urlsplit(printer.uri).port)
    async with proxy:
        printer_id = add_printer(f"ipp://localhost:{proxy.port}/ipp/print")  # its port is known once it runs
        async with bridge_harness.running():
            command_id = mews_simulator.add_printer_command(printer_id, encode(card_pdf))
            final = await wait_for_final_state(mews_simulator, command_id, 30)
    assert proxy.dropped == 1
    assert (final["State"], final["Notes"]) == ("Processed", None)
    assert [job["job_name"] for job in printer.results()] == [f"Mews {command_id}"]
