"""The lifecycle of configured instances, after Home Assistant's config entries."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel, SecretStr

from mews_bridge import DeviceConfigError, DeviceDriver, DeviceNotReady, InstanceContext
from mews_bridge.lifecycle import InstanceState, ManagedInstance


class Options(BaseModel):
    host: str = "printer.local"
    password: SecretStr = SecretStr("hunter22")
    not_ready_times: int = 0
    fail_with: str | None = None


class FlakyDriver(DeviceDriver[Options]):
    name = "flaky"
    device_type = "Printer"
    Options = Options
    setups = 0

    async def setup(self) -> None:
        FlakyDriver.setups += 1
        self.ctx.on_unload(lambda: self.ctx.store.append("callback"))
        self.ctx.create_task(asyncio.sleep(3600), "poller")
        if self.options.fail_with == "config":
            raise DeviceConfigError("unknown printer model 'XYZ'")
        if self.options.fail_with == "crash":
            raise RuntimeError("driver bug")
        if FlakyDriver.setups <= self.options.not_ready_times:
            raise DeviceNotReady("printer.local:9100 refused the connection")

    async def execute(self, job):
        return None

    async def diagnostics(self):
        return {"firmware": "1.0", "api_key": "abc123"}


def managed(name, tmp_path, **options) -> ManagedInstance:
    ctx = InstanceContext(
        name=name,
        state_dir=tmp_path / name,
        mews=None,
        events=None,
        store=[],  # a list stands in for the store so the callbacks can be seen
        devices=None,
        logger=logging.getLogger(name),
        _enterprise=None,
    )
    return ManagedInstance(
        "device", FlakyDriver, Options(**options), ctx, retry_initial_s=0.01, retry_max_s=0.02
    )


async def test_a_device_that_is_not_ready_is_retried_quietly_and_then_loads(tmp_path, caplog):
    FlakyDriver.setups = 0
    printer = managed("Reception printer", tmp_path, not_ready_times=3)
    printer.start()
    assert await printer.wait_settled() is InstanceState.SETUP_RETRY
    assert "refused the connection" in printer.reason
    await asyncio.wait_for(printer._task, 5)
    assert printer.state is InstanceState.LOADED
    assert printer.setup_attempts == 4
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "Reception printer is not available (printer.local:9100 refused the connection); retrying in the background"
    ]
    # each failed attempt cleaned up after itself
    assert printer.ctx.store == ["callback"] * 3
    await printer.unload()
    assert printer.state is InstanceState.NOT_LOADED
    assert printer.ctx.store == ["callback"] * 4
    assert not printer.ctx._tasks


async def test_a_failing_device_does_not_stop_another(tmp_path):
    FlakyDriver.setups = 0
    broken = managed("Broken", tmp_path, fail_with="crash")
    bad_config = managed("Misconfigured", tmp_path, fail_with="config")
    good = managed("Good", tmp_path)
    for instance in (broken, bad_config, good):
        instance.start()
    states = [await i.wait_settled() for i in (broken, bad_config, good)]
    assert states == [InstanceState.SETUP_ERROR, InstanceState.SETUP_ERROR, InstanceState.LOADED]
    assert broken.reason == "unexpected RuntimeError: driver bug"
    assert bad_config.reason == "unknown printer model 'XYZ'"
    assert bad_config.setup_attempts == 1  # bad settings are not retried
    for instance in (broken, bad_config, good):
        await instance.unload()


async def test_diagnostics_show_state_and_hide_secrets(tmp_path):
    FlakyDriver.setups = 0
    printer = managed("Reception printer", tmp_path)
    printer.start()
    await printer.wait_settled()
    diagnostics = await printer.diagnostics()
    assert diagnostics["state"] == "loaded"
    assert diagnostics["implementation"] == "flaky"
    assert diagnostics["options"]["host"] == "printer.local"
    assert diagnostics["options"]["password"] == "***"
    assert diagnostics["instance"] == {"firmware": "1.0", "api_key": "***"}
    assert "hunter22" not in repr(diagnostics)
    await printer.unload()
