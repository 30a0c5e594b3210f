"""A sliding-window request limiter shared by everything in the process that uses one access token.

Mews allows 200 requests per access token in any 30 s window, counted from the first request of a
burst. Staying under that (with some headroom) means normal work never meets a 429; when one comes
anyway, :meth:`SlidingWindowLimiter.throttled` makes every caller wait out ``Retry-After`` together,
or without one a pause that doubles with each 429 in a row.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import weakref
from collections import deque


class SlidingWindowLimiter:
    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = max(1, limit)
        self.window_s = window_s
        self._sent: deque[float] = deque()
        self._hold_until = 0.0
        self._throttled_in_row = 0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, and count it."""
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self.window_s:
                    self._sent.popleft()
                wait = self._hold_until - now
                if len(self._sent) >= self.limit:
                    wait = max(wait, self._sent[0] + self.window_s - now)
                if wait <= 0:
                    self._sent.append(now)
                    return
                await asyncio.sleep(wait)

    def in_window(self) -> int:
        """Requests sent in the current window."""
        cutoff = time.monotonic() - self.window_s
        return sum(1 for sent in self._sent if sent > cutoff)

    def hold(self, seconds: float) -> None:
        """Send nothing for ``seconds``."""
        self._hold_until = max(self._hold_until, time.monotonic() + seconds)

    def throttled(self, retry_after: float | None, max_s: float) -> float:
        """Mews answered 429: pause every caller for ``Retry-After``, or without it for an
        exponential pause with jitter (1, 2, 4 … ``max_s`` s) over 429s in a row; returns the pause."""
        if retry_after is None:
            retry_after = min(max_s, 2.0**self._throttled_in_row) * random.uniform(0.75, 1.0)
        self._throttled_in_row += 1
        pause = min(retry_after, max_s)
        self.hold(pause)
        return pause

    def answered(self) -> None:
        """A request went through: the next 429 starts the back-off afresh."""
        self._throttled_in_row = 0


# Per event loop, because asyncio primitives belong to one loop; the bridge runs a single loop.
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SlidingWindowLimiter]] = (
    weakref.WeakKeyDictionary()
)


def limiter_for(access_token: str, limit: int, window_s: float) -> SlidingWindowLimiter:
    """The process-wide limiter of an access token (kept by a hash, never by the token itself).

    Mews counts per token, so there is one budget per token: a second caller asking for another
    limit shares the first one's window, narrowed to the smaller limit."""
    key = hashlib.sha256(access_token.encode()).hexdigest()
    by_key = _limiters.setdefault(asyncio.get_running_loop(), {})
    limiter = by_key.get(key)
    if limiter is None:
        limiter = by_key[key] = SlidingWindowLimiter(limit, window_s)
    else:
        limiter.limit = min(limiter.limit, max(1, limit))
    return limiter
