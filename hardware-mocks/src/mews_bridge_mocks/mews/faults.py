"""Failures to inject at runtime, from tests or the CLI console; everything is off by default."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Literal, get_args

from aiohttp import WSCloseCode

from .errors import ApiError
from .websocket import EventHub


@dataclass
class _Failure:
    remaining: int
    status: int
    message: str


LossMode = Literal["drop", "500", "504", "delay", "any"]
LOSS_MODES: tuple[str, ...] = get_args(LossMode)
LOST_AFTER_COMMIT = "The operation failed unexpectedly."


@dataclass
class _Loss:
    ratio: float
    remaining: int | None
    mode: LossMode
    delay_s: float


def too_many_requests(retry_after_s: float) -> ApiError:
    """Mews' 429, with ``Retry-After`` in whole seconds (at least 1)."""
    seconds = max(1, math.ceil(retry_after_s))
    return ApiError(429, "Too many requests; retry later.", {"Retry-After": str(seconds)})


class Faults:
    """HTTP faults apply to Connector API calls with valid tokens (a 401 stays a 401).

    * ``error_ratio`` / ``error_status``: share of calls answered with a 5xx;
    * ``timeout_ratio``: share answered with 408 (the heavy-request timeout);
    * ``latency_s``: added to every HTTP answer;
    * ``rate_limit_storm(s)``: every call gets 429 for ``s`` seconds;
    * ``fail_operation(op, times, status)``: the next ``times`` calls of ``op`` fail (0 stops it);
    * ``lose_responses(op, ratio, times, mode)``: ``op`` is applied, then its answer is lost (the
      connection drops, a 500/504 comes after the commit, or it is delayed past the client's timeout);
    * ``silent_websockets``: sockets stay open but send nothing and answer no ping;
    * ``refuse_websockets_for(s)``: new sockets get 503 for ``s`` seconds;
    * ``await drop_websockets()``: close (or cut) every open socket now.

    ``rng`` decides the ratios; seed it (``faults.rng.seed(1)``) for repeatable runs.
    """

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub
        self.rng = random.Random()
        self.error_ratio = 0.0
        self.error_status = 500
        self.timeout_ratio = 0.0
        self.latency_s = 0.0
        self._storm_until = 0.0
        self._failures: dict[str, _Failure] = {}
        self._losses: dict[str, _Loss] = {}
        self.lost_responses: list[tuple[str, str]] = []
        """(operation, mode) of every answer lost so far."""

    def clear(self) -> None:
        """Switch every fault off (open sockets stay open)."""
        self.error_ratio = self.timeout_ratio = self.latency_s = 0.0
        self.error_status = 500
        self._storm_until = 0.0
        self._failures.clear()
        self._losses.clear()
        self._hub.silent = False
        self._hub.refuse_for(0)

    def rate_limit_storm(self, seconds: float) -> None:
        self._storm_until = time.monotonic() + seconds

    def fail_operation(
        self, operation: str, times: int = 1, status: int = 500, message: str | None = None
    ) -> None:
        """Fail the next ``times`` calls of ``operation`` (e.g. ``"commands/update"``) with ``status``;
        ``times=0`` lets it succeed again."""
        if times <= 0:
            self._failures.pop(operation, None)
            return
        self._failures[operation] = _Failure(times, status, message or f"Injected failure of {operation}.")

    def lose_responses(
        self,
        operation: str,
        ratio: float = 1.0,
        times: int | None = None,
        mode: LossMode = "any",
        *,
        delay_s: float = 35.0,
    ) -> None:
        """Apply ``ratio`` (0..1) of the calls of ``operation``, then lose the answer, at most ``times``
        times (None: no limit; 0 or ``ratio`` 0 stops it). ``mode``: ``drop`` cuts the connection,
        ``500``/``504`` answer that status, ``delay`` answers after ``delay_s`` (longer than the
        client waits; Mews' default client timeout is 30 s), ``any`` picks one of those each time."""
        if mode not in LOSS_MODES:
            raise ValueError(f"mode must be one of {', '.join(LOSS_MODES)}")
        if not 0 <= ratio <= 1:
            raise ValueError("ratio must be between 0 and 1")
        if ratio == 0 or times == 0:
            self._losses.pop(operation, None)
            return
        self._losses[operation] = _Loss(ratio, times, mode, delay_s)

    def loss(self, operation: str) -> tuple[str, float] | None:
        """How to lose the answer of this (applied) call, as (mode, delay), if at all."""
        loss = self._losses.get(operation)
        if loss is None or self.rng.random() >= loss.ratio:
            return None
        if loss.remaining is not None:
            loss.remaining -= 1
            if loss.remaining <= 0:
                del self._losses[operation]
        mode = self.rng.choice(LOSS_MODES[:-1]) if loss.mode == "any" else loss.mode
        self.lost_responses.append((operation, mode))
        return mode, loss.delay_s

    @property
    def silent_websockets(self) -> bool:
        return self._hub.silent

    @silent_websockets.setter
    def silent_websockets(self, silent: bool) -> None:
        self._hub.silent = silent

    def refuse_websockets_for(self, seconds: float) -> None:
        self._hub.refuse_for(seconds)

    async def drop_websockets(self, code: int = WSCloseCode.SERVICE_RESTART, *, abrupt: bool = False) -> int:
        """Close every open socket with ``code`` (or cut TCP without a close frame); returns how many."""
        return await self._hub.close_all(code, abrupt=abrupt)

    def storm_error(self) -> ApiError | None:
        remaining = self._storm_until - time.monotonic()
        return too_many_requests(remaining) if remaining > 0 else None

    def injected_error(self, operation: str) -> ApiError | None:
        """The failure to answer this call with, if any (apart from the storm)."""
        failure = self._failures.get(operation)
        if failure is not None:
            failure.remaining -= 1
            if failure.remaining <= 0:
                del self._failures[operation]
            return ApiError(failure.status, failure.message)
        if self.timeout_ratio and self.rng.random() < self.timeout_ratio:
            return ApiError(408, "The request took too long; narrow it down.")
        if self.error_ratio and self.rng.random() < self.error_ratio:
            return ApiError(self.error_status, "An unexpected error occurred.")
        return None
