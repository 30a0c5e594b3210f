"""pytest fixture: ``ami_simulator``, an :class:`AmiSimulator` on loopback for one test.

Manager user ``mewsbridge`` / secret ``s3cret``; refused logins are answered at once (Asterisk
waits 1 s) and ``writetimeout`` is 1 s, as the plugin's ``docs/manager.conf.sample`` has it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .simulator import AmiSimulator

USERNAME = "mewsbridge"
SECRET = "s3cret"


@pytest_asyncio.fixture
async def ami_simulator() -> AsyncIterator[AmiSimulator]:
    async with AmiSimulator(
        username=USERNAME, secret=SECRET, auth_failure_delay=0.0, write_timeout=1.0
    ) as sim:
        yield sim
