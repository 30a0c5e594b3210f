"""A plugin whose drivers do what each command's data tells them, for testing the pipeline.

A printer command carries its script as base64 JSON in ``FileData`` (``FileType`` ``application/x-script``);
a key-cutter command carries it in ``KeyCutterData``. Each run is appended to ``log_file`` so that tests,
including ones that kill the bridge process, can count how often a command really ran.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import mews_bridge
from mews_bridge import CommandFailed, CommandJob, CommandRejected, DeviceDriver, DeviceNotReady, Service


class Script(BaseModel):
    sleep_s: float = 0.0
    block_s: float = 0.0
    first_run_sleep_s: float = 0.0
    progress: list[float] = []
    fail: str | None = None
    reject: str | None = None
    crash: bool = False
    notes: str | None = None


class ScriptedOptions(BaseModel):
    log_file: Path
    not_ready: bool = False


def printer_data(**script: Any) -> dict[str, Any]:
    """Mews ``Data`` of a printer command running ``script``."""
    encoded = base64.b64encode(json.dumps(script).encode()).decode()
    return {
        "CopyCount": 1,
        "FileType": "application/x-script",
        "FileData": encoded,
        "PrinterName": "Printer",
        "PrinterDriverName": "",
        "PrinterPortName": "",
    }


def cutter_data(**script: Any) -> dict[str, Any]:
    """Mews ``Data`` of a key-cutter command running ``script``."""
    return {
        "KeyCount": 1,
        "LockIds": ["101"],
        "StartUtc": "2026-11-23T14:00:00Z",
        "EndUtc": "2026-11-25T10:00:00Z",
        "LastName": "Novak",
        "KeyCutterData": json.dumps(script),
    }


class _Scripted(DeviceDriver[ScriptedOptions]):
    Options = ScriptedOptions

    async def setup(self) -> None:
        if self.options.not_ready:
            raise DeviceNotReady(f"{self.ctx.name} is switched off")

    def _log(self, line: str) -> None:
        with self.options.log_file.open("a") as out:
            out.write(line + "\n")

    async def _perform(self, job: CommandJob[Any], script: Script) -> str | None:
        first_run = f"start {job.id}" not in self.options.log_file.read_text()
        self._log(f"start {job.id}")
        try:
            for fraction in script.progress:
                await job.progress(fraction)
            await asyncio.sleep(script.sleep_s + (script.first_run_sleep_s if first_run else 0))
        except asyncio.CancelledError:
            self._log(f"cancelled {job.id}")
            raise
        time.sleep(script.block_s)  # noqa: ASYNC251 - a careless driver blocking the loop, on purpose
        if script.crash:
            raise ZeroDivisionError("driver bug")
        if script.reject:
            raise CommandRejected(script.reject)
        if script.fail:
            raise CommandFailed(f"{script.fail} on {self.ctx.name}")
        await self.ctx.store.put(f"done:{job.id}", script.notes)
        self._log(f"done {job.id}")
        return script.notes


class ScriptedPrinter(_Scripted):
    name = "scripted_printer"
    device_type = "Printer"
    replay_safe = True

    async def execute(self, job: CommandJob[Any]) -> str | None:
        if job.data.file_type != "application/x-script":
            raise CommandRejected(f"Unsupported file type {job.data.file_type}")
        return await self._perform(job, Script.model_validate_json(base64.b64decode(job.data.file_data)))


class ScriptedCutter(_Scripted):
    name = "scripted_cutter"
    device_type = "KeyCutter"
    replay_safe = False

    async def execute(self, job: CommandJob[Any]) -> str | None:
        return await self._perform(job, Script.model_validate_json(job.data.key_cutter_data or "{}"))

    async def recover(self, job: CommandJob[Any]) -> str | None:
        key = f"done:{job.id}"
        if key in await self.ctx.store.items("done:"):
            return await self.ctx.store.get(key)
        return await super().recover(job)


class RecorderOptions(BaseModel):
    pass


class EventRecorder(Service[RecorderOptions]):
    """Keeps the Reservation events and reconnects it is told about."""

    name = "event_recorder"
    Options = RecorderOptions
    seen: list[dict[str, Any]] = []

    async def setup(self) -> None:
        EventRecorder.seen = []
        self.ctx.on_unload(self.ctx.events.subscribe("Reservation", self._record))
        self.ctx.on_unload(self.ctx.events.subscribe("Connected", self._record))

    async def _record(self, event: dict[str, Any]) -> None:
        EventRecorder.seen.append(event)


@mews_bridge.hookimpl
def register_drivers(register: Any) -> None:
    register(ScriptedPrinter)
    register(ScriptedCutter)


@mews_bridge.hookimpl
def register_services(register: Any) -> None:
    register(EventRecorder)
