"""What the simulator remembers of each HTTP call, for assertions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict


class RecordedCall(TypedDict):
    """One HTTP request and its answer, e.g. ``call["body"]["CommandId"]``, ``call["status"]``.

    ``operation`` is e.g. ``"commands/update"`` (None for unknown paths); ``body`` and ``response``
    are the parsed JSON (None when absent or unparsable); ``time`` is when the request arrived (UTC).
    ``lost`` is how the answer was lost after the call was applied (``drop``, ``500``, ``504``,
    ``delay``), None when it was sent as ``status`` and ``response`` say.
    """

    time: datetime
    method: str
    path: str
    operation: str | None
    body: Any
    status: int
    request_id: str
    response: Any
    lost: str | None
