"""The durable local journal: SQLite (WAL) in ``state_dir``.

Every command is written here before the bridge acts on it, and moves through phases:

``queued`` (written on receipt) → ``running`` (just before the driver starts) → ``finished`` (the
final state and Notes are decided) → ``acknowledged`` (Mews accepted that final state). A command
whose device is idle is written ``running`` straight away: receipt and start in one write.

After a crash the phase tells what to do: ``queued`` runs, ``running`` was interrupted (re-run only
if the driver is replay-safe, else the driver may recover it), ``finished`` is acknowledged without
running again. Plugins keep small state in the same file through :class:`KeyValueStore`.

All SQLite calls run on one worker thread so that the event loop never waits on the SD card.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from .exceptions import MewsBridgeError

T = TypeVar("T")
Phase = Literal["queued", "running", "finished", "acknowledged"]
IN_FLIGHT: tuple[Phase, ...] = ("queued", "running", "finished")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    device_name TEXT NOT NULL,
    instance TEXT,  -- the name of the configured instance that ran it
    created_utc TEXT NOT NULL,
    phase TEXT NOT NULL,
    final_state TEXT,
    notes TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    received_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    acknowledged_at TEXT
);
CREATE INDEX IF NOT EXISTS commands_phase ON commands (phase);
-- The status page's last commands, overall and per device, without reading the whole table.
CREATE INDEX IF NOT EXISTS commands_device_received ON commands (device_name, received_at);
CREATE INDEX IF NOT EXISTS commands_received ON commands (received_at);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
"""


class JournalError(MewsBridgeError):
    """The journal could not be read or written (storage full or failing, database locked or closed)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class CommandRecord:
    id: str
    device_id: str
    device_name: str
    instance: str | None
    """The name of the configured instance that ran the command (None until one does)."""
    created_utc: str
    phase: Phase
    final_state: str | None
    notes: str | None
    runs: int
    received_at: str
    started_at: str | None
    finished_at: str | None
    acknowledged_at: str | None


class Journal:
    """The bridge's SQLite journal. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        """How long a write waits for another connection's lock (a backup, a CLI command) before failing."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path, *, busy_timeout_s: float = 5.0) -> Journal:
        journal = cls(path, busy_timeout_s=busy_timeout_s)
        try:
            await asyncio.get_running_loop().run_in_executor(journal._executor, journal._connect)
        except (sqlite3.Error, OSError) as exc:
            journal._executor.shutdown(wait=False)
            raise JournalError(f"Could not open the journal {path}: {exc}") from exc
        return journal

    def _connect(self) -> None:
        # Guests' names, rooms and command data: owner-only, whatever the umask or an older install made.
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path.parent.chmod(0o700)
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        for path in (
            self.path,
            self.path.with_name(self.path.name + "-wal"),
            self.path.with_name(self.path.name + "-shm"),
        ):
            if path.exists():
                path.chmod(0o600)  # SQLite gives the -wal and -shm files the main file's mode
        db = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a transition must survive a power cut, or a key could be cut twice.
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._db is None:
            raise JournalError("The journal is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"The journal failed: {exc}") from exc

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        if self._db is None:
            raise JournalError("The journal is closed")
        return self._db.execute(sql, params)

    async def add(
        self,
        command_id: str,
        device_id: str,
        device_name: str,
        created_utc: str,
        *,
        running_as: str | None = None,
    ) -> bool:
        """Record a command on receipt; False if it was already known (a duplicate).

        Written without waiting for the disk (no fsync): a receipt lost to a power cut costs nothing,
        since Mews still shows the command active and hands it over again, and the ``running`` mark,
        which does wait for the disk, makes it durable along with everything before it in the log.
        That saves one fsync between Mews' event and the device (a few ms on an SD card).

        ``running_as`` records receipt and start in one write (waiting for the disk, as
        :meth:`mark_running` does): for a command its device's worker starts at once."""
        if running_as is None:
            inserted = await self._run(
                self._exec_unsynced,
                "INSERT OR IGNORE INTO commands (id, device_id, device_name, created_utc, phase, received_at) "
                "VALUES (?, ?, ?, ?, 'queued', ?)",
                (command_id, device_id, device_name, created_utc, _now()),
            )
            return inserted == 1
        now = _now()
        cursor = await self._run(
            self._exec,
            "INSERT OR IGNORE INTO commands (id, device_id, device_name, instance, created_utc, phase, runs, "
            "received_at, started_at) VALUES (?, ?, ?, ?, ?, 'running', 1, ?, ?)",
            (command_id, device_id, device_name, running_as, created_utc, now, now),
        )
        return cursor.rowcount == 1

    def _exec_unsynced(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run one write without waiting for the disk; its row count. The next synced write (or a
        checkpoint) flushes it along with everything before it."""
        self._exec("PRAGMA synchronous=NORMAL")  # WAL: the commit is ordered, not yet flushed
        try:
            return self._exec(sql, params).rowcount
        finally:
            self._exec("PRAGMA synchronous=FULL")

    async def get(self, command_id: str) -> CommandRecord | None:
        row = (await self._run(self._exec, "SELECT * FROM commands WHERE id = ?", (command_id,))).fetchone()
        return CommandRecord(**dict(row)) if row else None

    async def in_flight(self) -> list[CommandRecord]:
        marks = ",".join("?" * len(IN_FLIGHT))
        rows = (
            await self._run(
                self._exec, f"SELECT * FROM commands WHERE phase IN ({marks}) ORDER BY received_at", IN_FLIGHT
            )
        ).fetchall()
        return [CommandRecord(**dict(row)) for row in rows]

    async def mark_running(self, command_id: str, instance_name: str) -> None:
        await self._run(
            self._exec,
            "UPDATE commands SET phase = 'running', instance = ?, runs = runs + 1, started_at = ? WHERE id = ?",
            (instance_name, _now(), command_id),
        )

    async def mark_finished(self, command_id: str, final_state: str, notes: str | None) -> None:
        await self._run(
            self._exec,
            "UPDATE commands SET phase = 'finished', final_state = ?, notes = ?, finished_at = ? WHERE id = ?",
            (final_state, notes, _now(), command_id),
        )

    async def mark_acknowledged(self, command_id: str, final_state: str | None = None) -> None:
        """Mews has the final state (``final_state`` records one Mews set itself, e.g. Cancelled)."""
        await self._run(
            self._exec,
            "UPDATE commands SET phase = 'acknowledged', acknowledged_at = ?, "
            "final_state = COALESCE(?, final_state), finished_at = COALESCE(finished_at, ?) WHERE id = ?",
            (_now(), final_state, _now(), command_id),
        )

    async def recent(self, limit: int) -> list[CommandRecord]:
        """The newest ``limit`` commands, newest first."""
        rows = (
            await self._run(self._exec, "SELECT * FROM commands ORDER BY received_at DESC LIMIT ?", (limit,))
        ).fetchall()
        return [CommandRecord(**dict(row)) for row in rows]

    async def latest_per_device(self) -> list[CommandRecord]:
        """Each device's newest command."""
        rows = (
            await self._run(
                self._exec,
                "SELECT c.* FROM commands c JOIN (SELECT device_name, max(received_at) AS last FROM commands "
                "WHERE device_name != '' GROUP BY device_name) l ON c.device_name = l.device_name AND c.received_at = l.last",
            )
        ).fetchall()
        return [CommandRecord(**dict(row)) for row in rows]

    async def prune(self, data_older_than: timedelta, ids_older_than: timedelta) -> int:
        """Purge acknowledged commands' data (device, Notes) after ``data_older_than``, keeping the id
        and the outcome that exactly-once needs; forget them wholly after ``ids_older_than``, long after
        Mews would expire them. Returns how many commands were purged."""
        now = datetime.now(UTC)
        data_cutoff = (now - data_older_than).isoformat(timespec="milliseconds")
        ids_cutoff = (now - ids_older_than).isoformat(timespec="milliseconds")

        def purge() -> int:
            purged = self._exec(
                "UPDATE commands SET device_name = '', instance = NULL, notes = NULL "
                "WHERE phase = 'acknowledged' AND received_at < ? AND device_name != ''",
                (data_cutoff,),
            ).rowcount
            self._exec("DELETE FROM commands WHERE phase = 'acknowledged' AND received_at < ?", (ids_cutoff,))
            return purged

        return await self._run(purge)

    def store(self, namespace: str) -> KeyValueStore:
        return KeyValueStore(self, namespace)


class KeyValueStore:
    """Small durable JSON values for one driver or service instance, kept in the journal."""

    def __init__(self, journal: Journal, namespace: str) -> None:
        self._journal = journal
        self.namespace = namespace

    async def get(self, key: str, default: Any = None) -> Any:
        row = (
            await self._journal._run(
                self._journal._exec,
                "SELECT value FROM kv WHERE namespace = ? AND key = ?",
                (self.namespace, key),
            )
        ).fetchone()
        return json.loads(row["value"]) if row else default

    async def put(self, key: str, value: Any, *, durable: bool = True) -> None:
        """Store ``value``; with ``durable=False`` without waiting for the disk: a power cut may lose
        it (and only it), until the next durable write of this journal flushes it."""
        journal = self._journal
        await journal._run(
            journal._exec if durable else journal._exec_unsynced,
            "INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (self.namespace, key, json.dumps(value, default=str), _now()),
        )

    async def delete(self, key: str) -> None:
        await self._journal._run(
            self._journal._exec, "DELETE FROM kv WHERE namespace = ? AND key = ?", (self.namespace, key)
        )

    async def items(self, prefix: str = "") -> dict[str, Any]:
        """All keys starting with ``prefix`` and their values."""
        rows = (
            await self._journal._run(
                self._journal._exec,
                "SELECT key, value FROM kv WHERE namespace = ? AND key >= ? AND key < ? ORDER BY key",
                (self.namespace, prefix, prefix + "\U0010ffff"),
            )
        ).fetchall()
        return {row["key"]: json.loads(row["value"]) for row in rows}
