"""pytest fixture ``mews_simulator``: a running ``MewsSimulator`` with the default world."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .simulator import MewsSimulator


@pytest_asyncio.fixture
async def mews_simulator() -> AsyncIterator[MewsSimulator]:
    """Started on an ephemeral loopback port with the public demo tokens; stopped after the test."""
    async with MewsSimulator() as simulator:
        yield simulator
