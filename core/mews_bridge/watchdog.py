"""Noticing code that blocks the event loop, and naming the plugin it belongs to.

A task on the loop beats every ``interval_s``; a thread watches the beat. When the loop misses it by
more than ``threshold_s``, the thread looks at what the loop's thread is executing, finds the first
frame that belongs to a plugin, and once the loop is free again logs how long it was held and by whom.
One blocking driver then shows up by name in the log instead of as a slow bridge.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from types import FrameType

from .plugins import PluginHost

log = logging.getLogger(__name__)


class LoopWatchdog:
    def __init__(self, host: PluginHost, *, threshold_s: float = 0.5, interval_s: float = 0.1) -> None:
        self.host = host
        self.threshold_s = threshold_s
        self.interval_s = interval_s
        self.incidents = 0
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_thread_id = 0

    async def run(self) -> None:
        """Beat until cancelled; the watching thread lives as long as this task."""
        self._loop_thread_id = threading.get_ident()
        self._beat = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()
        try:
            while True:
                self._beat = time.monotonic()
                await asyncio.sleep(self.interval_s)
        finally:
            self._stop.set()
            self._thread.join()

    def _watch(self) -> None:
        culprit: str | None = None
        blocked_since = 0.0
        while not self._stop.wait(self.interval_s / 2):
            beat = self._beat
            late = time.monotonic() - beat
            if late > self.threshold_s + self.interval_s and culprit is None:
                blocked_since = beat
                culprit = self._describe(sys._current_frames().get(self._loop_thread_id))
            elif culprit is not None and beat > blocked_since:
                self.incidents += 1
                log.warning("The event loop was blocked for %.1f s by %s", beat - blocked_since, culprit)
                culprit = None

    def _describe(self, frame: FrameType | None) -> str:
        """The plugin whose code is running in ``frame``'s stack, with its version and the line."""
        packages = {
            (info.module or "").split(":")[0].split(".")[0]: info
            for info in self.host.plugins.values()
            if info.module
        }
        innermost: FrameType | None = frame
        while frame is not None:
            package = str(frame.f_globals.get("__name__", "")).split(".")[0]
            info = packages.get(package)
            if info is not None:
                where = f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"
                return f"plugin {info.name} ({info.version or 'unknown version'}) at {where}"
            frame = frame.f_back
        if innermost is None:
            return "unknown code"
        return f"{innermost.f_code.co_filename}:{innermost.f_lineno} in {innermost.f_code.co_name}"
