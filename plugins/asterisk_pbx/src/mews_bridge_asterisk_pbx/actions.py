"""The AMI actions the plugin sends, as typed methods over :class:`.link.AmiLink`: AstDB
(``DBPut``, ``DBGet``, ``DBGetTree``, ``DBDel``, pipelined writes), channel variables, CLI commands
and Ping.
"""

from __future__ import annotations

from collections.abc import Iterable

from .link import AmiActionError, AmiLink, Headers, Reply

_NOT_DELETED = "Database entry could not be deleted"


class AmiClient(AmiLink):
    """An :class:`AmiLink` that speaks Asterisk's actions by name; see :class:`AmiLink` for
    connecting, reconnecting and events."""

    async def ping(self) -> Reply:
        return await self.action("Ping")

    async def command(self, command: str) -> list[str]:
        """Run a CLI command; its output lines."""
        reply = await self.action("Command", {"Command": command})
        return reply.response.get_all("Output")

    async def db_put(self, family: str, key: str, value: str) -> None:
        await self.action("DBPut", {"Family": family, "Key": key, "Val": value})

    async def db_get(self, family: str, key: str) -> str | None:
        """The AstDB value, or None if the key does not exist."""
        reply = await self.action("DBGet", {"Family": family, "Key": key}, check=False)
        if not reply.ok:
            if reply.message == "Database entry not found":
                return None
            raise AmiActionError("DBGet", reply)
        return reply.events[0].get("Val") if reply.events else None

    async def db_get_tree(self, family: str) -> dict[str, str]:
        """Every key under ``family``, as full paths (``/hotel/101/outside``) to values."""
        reply = await self.action("DBGetTree", {"Family": family})
        return {event.get("Key") or "": event.get("Val") or "" for event in reply.events}

    async def db_get_trees(self, families: Iterable[str]) -> dict[str, str]:
        """:meth:`db_get_tree` of several families, pipelined; their keys merged."""
        replies = await self.pipeline(("DBGetTree", {"Family": family}) for family in families)
        return {event.get("Key") or "": event.get("Val") or "" for reply in replies for event in reply.events}

    async def db_write(self, changes: Iterable[tuple[str, str, str | None]]) -> None:
        """``(family, key, value)`` changes, pipelined: ``DBPut`` each value, ``DBDel`` where it is
        None (a key already gone is fine)."""
        actions: list[tuple[str, Headers]] = [
            ("DBDel", {"Family": family, "Key": key})
            if value is None
            else ("DBPut", {"Family": family, "Key": key, "Val": value})
            for family, key, value in changes
        ]
        replies = await self.pipeline(actions, check=False)
        for (name, _), reply in zip(actions, replies, strict=True):
            if not reply.ok and not (name == "DBDel" and reply.message == _NOT_DELETED):
                raise AmiActionError(name, reply)

    async def db_del(self, family: str, key: str) -> bool:
        """Delete an AstDB key; False if it did not exist."""
        reply = await self.action("DBDel", {"Family": family, "Key": key}, check=False)
        if not reply.ok:
            if reply.message == _NOT_DELETED:
                return False
            raise AmiActionError("DBDel", reply)
        return True

    async def setvar(self, variable: str, value: str, channel: str | None = None) -> None:
        headers = {"Variable": variable, "Value": value}
        if channel is not None:
            headers["Channel"] = channel
        await self.action("Setvar", headers)

    async def getvar(self, variable: str, channel: str | None = None) -> str:
        headers = {"Variable": variable}
        if channel is not None:
            headers["Channel"] = channel
        reply = await self.action("Getvar", headers)
        return reply.get("Value") or ""
