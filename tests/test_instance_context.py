"""``mews_bridge.testing.instance_context``: a driver's context without a bridge, and its clean-up."""

from __future__ import annotations

import asyncio

import pytest

from mews_bridge.journal import Journal
from mews_bridge.testing import instance_context


async def test_the_parts_given_are_used_and_a_part_left_out_fails_naming_the_argument(tmp_path):
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    try:
        ctx = instance_context(tmp_path / "desk", "Desk printer", store=journal.store("device:Desk printer"))
        await ctx.store.put("paper", "ok")
        assert await ctx.store.get("paper") == "ok"
        assert ctx.ensure_state_dir() == tmp_path / "desk"
        with pytest.raises(AssertionError, match=r"no Mews client: pass mews= to instance_context"):
            await ctx.mews.get_active_commands()
        with pytest.raises(AssertionError, match=r"pass enterprise= to instance_context"):
            await ctx.enterprise()
    finally:
        await journal.close()


async def test_close_cancels_background_tasks_and_runs_unload_callbacks_newest_first(tmp_path):
    ctx = instance_context(tmp_path)
    ran: list[str] = []

    async def second() -> None:
        ran.append("second")

    def broken() -> None:
        raise OSError("the port vanished")

    ctx.on_unload(lambda: ran.append("first"))
    ctx.on_unload(broken)  # logged; the others still run
    ctx.on_unload(second)
    sleeper = ctx.create_task(asyncio.sleep(60), "sleeper")
    await ctx.close()
    assert sleeper.cancelled()
    assert ran == ["second", "first"]
    await ctx.close()  # callbacks run once
    assert ran == ["second", "first"]
