"""Mews' request limit: a sliding window per AccessToken (200 requests per 30 s by default)."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``limit`` accepted requests per key within any ``window_s`` seconds; ``limit=None`` is off.

    Both attributes may be changed at runtime. Refused requests do not count, so ``Retry-After``
    is exactly the time until the oldest accepted request leaves the window.
    """

    def __init__(
        self, limit: int | None = 200, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._accepted: defaultdict[str, deque[float]] = defaultdict(deque)

    def acquire(self, key: str) -> float | None:
        """Count a request; None if it may pass, else the seconds until it would."""
        if self.limit is None:
            return None
        now = self._clock()
        accepted = self._accepted[key]
        while accepted and accepted[0] <= now - self.window_s:
            accepted.popleft()
        if len(accepted) >= self.limit:
            return accepted[0] + self.window_s - now if accepted else self.window_s
        accepted.append(now)
        return None

    def reset(self) -> None:
        self._accepted.clear()
