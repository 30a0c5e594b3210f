"""Entities of one kind, kept in creation order: the order cursor pagination walks backwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Row = dict[str, Any]


class Table:
    """Mews-shaped entity dicts keyed by ``Id``."""

    def __init__(self) -> None:
        self._rows: dict[str, Row] = {}
        self._positions: dict[str, int] = {}

    def add(self, row: Row) -> str:
        row_id = row["Id"]
        self._positions[row_id] = len(self._rows)
        self._rows[row_id] = row
        return row_id

    def __getitem__(self, row_id: str) -> Row:
        return self._rows[row_id]

    def get(self, row_id: str | None) -> Row | None:
        return None if row_id is None else self._rows.get(row_id)

    def __contains__(self, row_id: object) -> bool:
        return row_id in self._rows

    def __iter__(self) -> Iterator[Row]:
        """Oldest first."""
        return iter(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)

    def position(self, row_id: str) -> int:
        return self._positions[row_id]
