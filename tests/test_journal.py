"""The journal at rest: owner-only files whatever the umask, and guests' data purged after retention."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import timedelta

import pytest

from mews_bridge.journal import Journal, JournalError


@pytest.fixture
def open_umask():
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_journal_and_the_state_dir_are_owner_only_whatever_the_umask(tmp_path, open_umask):
    state = tmp_path / "state"
    state.mkdir(mode=0o777)
    journal = await Journal.open(state / "journal.sqlite3")
    try:
        await journal.add("c1", "d1", "Desk printer", "2026-12-01T10:00:00+00:00")
        wal = state / "journal.sqlite3-wal"
        assert wal.exists()
        assert mode(wal) == 0o600
    finally:
        await journal.close()
    assert mode(state) == 0o700
    assert mode(state / "journal.sqlite3") == 0o600


async def test_a_purge_keeps_ids_and_outcomes_and_forgets_the_rest_later(tmp_path):
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    try:
        for command_id in ("done", "running"):
            await journal.add(command_id, "d1", "Reception encoder", "2026-12-01T10:00:00+00:00")
        await journal.mark_finished("done", "Processed", "Key for room 101 (Anna Huber) cut")
        await journal.mark_acknowledged("done")
        await journal.mark_running("running", "Reception encoder")

        purged = await journal.prune(timedelta(0), timedelta(days=365))
        done, running = await journal.get("done"), await journal.get("running")
        again = await journal.add("done", "d1", "Reception encoder", "2026-12-01T10:00:00+00:00")
        await journal.prune(timedelta(0), timedelta(0))
        forgotten = await journal.get("done")
    finally:
        await journal.close()
    assert purged == 1
    assert (done.phase, done.final_state, done.notes, done.device_name) == (
        "acknowledged",
        "Processed",
        None,
        "",
    )
    assert running.notes is None and running.device_name == "Reception encoder"
    assert not again  # the id still makes a repeat a duplicate
    assert forgotten is None


async def test_a_locked_or_closed_journal_raises_its_own_error(tmp_path):
    journal = await Journal.open(tmp_path / "journal.sqlite3")
    holder = sqlite3.connect(tmp_path / "journal.sqlite3", isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    journal._db.execute("PRAGMA busy_timeout = 0")
    try:
        with pytest.raises(JournalError):
            await journal.add("c1", "d1", "Desk printer", "2026-12-01T10:00:00+00:00")
    finally:
        holder.rollback()
        holder.close()
    await journal.add("c1", "d1", "Desk printer", "2026-12-01T10:00:00+00:00")
    await journal.close()
    with pytest.raises(JournalError):
        await journal.get("c1")


async def test_a_receipt_skips_the_fsync_but_every_transition_after_it_waits_for_the_disk(tmp_path):
    journal = await Journal.open(tmp_path / "journal.sqlite")
    try:
        assert await journal.add("c1", "d1", "Printer", "2026-01-01T00:00:00+00:00") is True
        assert await journal.add("c1", "d1", "Printer", "2026-01-01T00:00:00+00:00") is False
        synchronous = await journal._run(lambda: journal._exec("PRAGMA synchronous").fetchone()[0])
        assert synchronous == 2  # FULL again: the running mark flushes the receipt with it
        await journal.mark_running("c1", "Printer")
    finally:
        await journal.close()
    reopened = await Journal.open(tmp_path / "journal.sqlite")
    try:
        record = await reopened.get("c1")
        assert record is not None and record.phase == "running"
    finally:
        await reopened.close()


async def test_a_store_value_put_without_the_fsync_is_kept_and_later_writes_wait_for_the_disk(tmp_path):
    journal = await Journal.open(tmp_path / "journal.sqlite")
    try:
        store = journal.store("encoder")
        await store.put("last_command", {"id": "c1", "state": "started"}, durable=False)
        synchronous = await journal._run(lambda: journal._exec("PRAGMA synchronous").fetchone()[0])
        assert synchronous == 2  # FULL again for the next write, which flushes this one with it
        await store.put("room:101", {"reservation_id": "r1"})
    finally:
        await journal.close()
    reopened = await Journal.open(tmp_path / "journal.sqlite")
    try:
        assert await reopened.store("encoder").items() == {
            "last_command": {"id": "c1", "state": "started"},
            "room:101": {"reservation_id": "r1"},
        }
    finally:
        await reopened.close()
