"""pytest fixture: a running :class:`EncoderSimulator`.

The dialect defaults to ``salto``; pick another with
``@pytest.mark.parametrize("encoder_simulator", ["onity"], indirect=True)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .simulator import EncoderSimulator


@pytest_asyncio.fixture
async def encoder_simulator(request: pytest.FixtureRequest) -> AsyncIterator[EncoderSimulator]:
    async with EncoderSimulator(getattr(request, "param", "salto")) as simulator:
        yield simulator
