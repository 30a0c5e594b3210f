"""Finding what a test left behind: tasks, threads, sockets and other descriptors."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass


def _descriptors() -> dict[int, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed while listing (the listing's own descriptor)
    return found


@dataclass
class Snapshot:
    threads: set[int]
    descriptors: dict[int, str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls({t.ident or 0 for t in threading.enumerate()}, _descriptors())

    def leaks_since(self, settle_s: float = 2.0) -> list[str]:
        """What is new since this snapshot and still there after up to ``settle_s``."""
        deadline = time.monotonic() + settle_s
        while True:
            threads = [t for t in threading.enumerate() if t.ident not in self.threads and t.is_alive()]
            sockets = {
                fd: target
                for fd, target in _descriptors().items()
                if target.startswith(("socket:", "/dev/pts/", "/dev/ptmx"))
                and self.descriptors.get(fd) != target
            }
            if (not threads and not sockets) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [f"thread {t.name!r}" for t in threads] + [
            f"descriptor {fd} ({target})" for fd, target in sockets.items()
        ]
