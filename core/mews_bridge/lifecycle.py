"""The lifecycle of each configured device or service, after Home Assistant's config entries.

``not_loaded → setup_in_progress → loaded | setup_retry | setup_error``, and on unload
``unload_in_progress → not_loaded | failed_unload``. ``DeviceNotReady`` (and a setup that hangs) is
retried with capped exponential backoff and jitter, logged once at warning and then quietly; bad
settings or credentials stop the instance with the reason. Nothing an instance raises reaches the host.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from .driver import DeviceDriver, Instance, InstanceContext
from .exceptions import DeviceAuthFailed, DeviceConfigError, DeviceNotReady
from .redaction import redact_data

log = logging.getLogger(__name__)


class InstanceState(StrEnum):
    NOT_LOADED = "not_loaded"
    SETUP_IN_PROGRESS = "setup_in_progress"
    LOADED = "loaded"
    SETUP_RETRY = "setup_retry"
    SETUP_ERROR = "setup_error"
    UNLOAD_IN_PROGRESS = "unload_in_progress"
    FAILED_UNLOAD = "failed_unload"


class _SetupTimedOut(DeviceNotReady):
    pass


class ManagedInstance:
    """One configured device or service and the driver/service object that serves it."""

    def __init__(
        self,
        kind: Literal["device", "service"],
        cls: type[Instance[Any]],
        options: BaseModel,
        ctx: InstanceContext,
        *,
        setup_timeout_s: float = 60.0,
        retry_initial_s: float = 5.0,
        retry_max_s: float = 80.0,
    ) -> None:
        self.kind = kind
        self.cls = cls
        self.options = options
        self.ctx = ctx
        self.setup_timeout_s = setup_timeout_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.state = InstanceState.NOT_LOADED
        self.reason: str | None = None
        self.setup_attempts = 0
        self.instance: Instance[Any] | None = None
        self._settled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        ctx.bind(self._stop)

    @property
    def name(self) -> str:
        return self.ctx.name

    @property
    def driver(self) -> DeviceDriver[Any]:
        """The loaded driver (only for devices in state ``loaded``)."""
        assert isinstance(self.instance, DeviceDriver) and self.state is InstanceState.LOADED
        return self.instance

    def start(self) -> None:
        """Begin setting up in the background; :meth:`wait_settled` tells when the first try is over."""
        self._task = asyncio.create_task(self._setup_until_done(), name=f"setup {self.name}")

    async def wait_settled(self) -> InstanceState:
        """Wait until the first setup attempt ended (loaded, retrying or failed)."""
        await self._settled.wait()
        return self.state

    async def wait_loaded(self) -> None:
        while self.state is not InstanceState.LOADED:
            if self.state in (InstanceState.SETUP_ERROR, InstanceState.FAILED_UNLOAD):
                raise RuntimeError(f"{self.name}: {self.reason}")
            await asyncio.sleep(0.05)

    async def _setup_until_done(self) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(DeviceNotReady),
            wait=wait_exponential_jitter(
                multiplier=self.retry_initial_s, max=self.retry_max_s, jitter=min(1.0, self.retry_initial_s)
            ),
            before_sleep=self._before_retry,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._setup_once()
        except (DeviceConfigError, DeviceAuthFailed) as exc:
            self._set_failed(str(exc))
            log.error("%s cannot start: %s", self.name, exc)
        except Exception as exc:
            self._set_failed(f"unexpected {type(exc).__name__}: {exc}")
            log.error("%s crashed while starting", self.name, exc_info=exc)
        finally:
            self._settled.set()

    async def _setup_once(self) -> None:
        self.setup_attempts += 1
        self.state = InstanceState.SETUP_IN_PROGRESS
        self.instance = self.cls(self.ctx, self.options)
        try:
            async with asyncio.timeout(self.setup_timeout_s):
                await self.instance.setup()
        except TimeoutError:
            await self.ctx.close()
            raise _SetupTimedOut(f"setup did not finish in {self.setup_timeout_s:g} s") from None
        except BaseException:
            await self.ctx.close()
            raise
        was_retrying = self.setup_attempts > 1
        self.state, self.reason = InstanceState.LOADED, None
        (log.info if was_retrying else log.debug)("%s is ready", self.name)

    def _before_retry(self, retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        self.state, self.reason = InstanceState.SETUP_RETRY, str(exc)
        self._settled.set()
        # Log once when a device becomes unavailable; SD-card logs must not fill with retries.
        if retry_state.attempt_number == 1:
            log.warning("%s is not available (%s); retrying in the background", self.name, exc)
        else:
            log.debug("%s still not available (%s)", self.name, exc)

    def _stop(self, reason: str) -> None:
        """The instance asked to stop (see ``InstanceContext.stop``); unload it outside its own tasks."""
        if self._stopping is None:
            log.error("%s stopped: %s", self.name, reason)
            self._stopping = asyncio.create_task(self._stop_for_good(reason), name=f"stop {self.name}")

    async def _stop_for_good(self, reason: str) -> None:
        await self.unload()
        self._set_failed(reason)

    def _set_failed(self, reason: str) -> None:
        self.state, self.reason, self.instance = InstanceState.SETUP_ERROR, reason, None

    async def unload(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.state is not InstanceState.LOADED or self.instance is None:
            self.state = InstanceState.NOT_LOADED
            return
        self.state = InstanceState.UNLOAD_IN_PROGRESS
        try:
            await self.instance.unload()
        except Exception as exc:
            log.error("%s failed to unload", self.name, exc_info=exc)
            self.state, self.reason = InstanceState.FAILED_UNLOAD, f"unload failed: {exc}"
        else:
            self.state = InstanceState.NOT_LOADED
        await self.ctx.close()

    async def diagnostics(self) -> dict[str, Any]:
        """State, settings and the instance's own diagnostics, secrets masked."""
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "implementation": self.cls.name,
            "plugin_version": self.cls.plugin_version,
            "state": self.state.value,
            "reason": self.reason,
            "setup_attempts": self.setup_attempts,
            "options": self.options.model_dump(mode="json"),
        }
        if self.state is InstanceState.LOADED and self.instance is not None:
            try:
                data["instance"] = await self.instance.diagnostics()
            except Exception as exc:
                data["instance"] = {"error": f"diagnostics failed: {exc}"}
        return redact_data(data, self.cls.secret_options)
