"""The device-command pipeline: from a Mews event to a final state the front desk can read.

Three parts, one module each: :mod:`~mews_bridge.intake` takes commands from Mews into the journal and
onto their devices' queues, :mod:`~mews_bridge.worker` runs them one at a time per device, and
:mod:`~mews_bridge.acknowledgement` gets their final states to Mews. API calls per command: the batched
fetch (shared; none after a catch-up, which carries the data), ``Processing`` only for a command still
running after ``processing_after_s``, and the final ``commands/update``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from .acknowledgement import Acknowledger
from .driver import LocalDevices
from .intake import Intake
from .journal import Journal
from .lifecycle import ManagedInstance
from .mews.client import MewsClient
from .settings import BridgeSettings
from .supervisor import Supervisor
from .worker import DeviceWorker, WorkerPool


class CommandPipeline(LocalDevices):
    """What the bridge sees of the pipeline: devices in, events in, local jobs, start, stop, status."""

    def __init__(
        self,
        mews: MewsClient,
        journal: Journal,
        settings: BridgeSettings,
        *,
        on_fatal: Callable[[BaseException], None],
        processing_after_s: float = 1.0,
        ack_retry_s: float = 15.0,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.supervisor = supervisor or Supervisor()
        self.acks = Acknowledger(mews, journal, on_fatal=on_fatal, retry_s=ack_retry_s)
        self.pool = WorkerPool(
            mews,
            journal,
            self.acks,
            max_parallel=settings.max_parallel_devices,
            processing_after_s=processing_after_s,
            progress_interval_s=settings.progress_interval_s,
        )
        self.intake = Intake(mews, journal, settings, self.pool, self.acks, on_fatal=on_fatal)
        self._task_names: list[str] = []

    @property
    def workers(self) -> list[DeviceWorker]:
        return self.pool.workers

    def add_device(self, managed: ManagedInstance, mews_device: str) -> DeviceWorker:
        return self.pool.add(managed, mews_device)

    def start(self) -> None:
        loops: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = [
            *((f"worker {w.name}", w.run) for w in self.pool.workers),
            ("command fetch", self.intake.run),
            ("command acknowledgements", self.acks.run),
        ]
        for name, factory in loops:
            self.supervisor.start(name, factory)
            self._task_names.append(name)

    async def stop(self, grace_s: float) -> None:
        """Stop taking work; let running commands finish for ``grace_s``, then cut them off."""
        self.intake.accepting = False
        await self.pool.stop(grace_s)
        await self.supervisor.stop(self._task_names)

    def on_command_event(self, command_id: str, state: str | None) -> None:
        self.intake.on_command_event(command_id, state)

    async def catch_up(self) -> None:
        await self.intake.catch_up()

    async def recover(self) -> None:
        await self.intake.recover()

    async def run(self, device_name: str, data: dict[str, Any]) -> str | None:
        return await self.pool.run(device_name, data)

    def status(self) -> dict[str, Any]:
        return {
            "devices": {
                w.name: {"queued": w.queue.qsize(), "busy": w.current is not None} for w in self.pool.workers
            },
            "waiting_for_mews": self.acks.waiting,
        }
