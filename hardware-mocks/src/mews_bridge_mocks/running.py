"""What every simulator shares: started and stopped, or used as ``async with``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self


class Simulator(ABC):
    """``async with Sim(...) as sim`` starts it on loopback with its defaults and stops it afterwards."""

    @abstractmethod
    async def start(self) -> Any:
        """Start listening (each simulator takes its own keyword arguments, all with defaults)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop listening and close every connection."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
