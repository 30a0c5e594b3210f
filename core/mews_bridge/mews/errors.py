"""Errors of the Connector API, by what the caller should do about them."""

from __future__ import annotations


class MewsError(Exception):
    """Any failed Connector API call. ``message`` is Mews' own text where it sent one."""

    def __init__(
        self, operation: str, message: str, status: int | None = None, request_id: str | None = None
    ):
        super().__init__(f"{operation}: {message}" + (f" (HTTP {status})" if status else ""))
        self.operation = operation
        self.message = message
        self.status = status
        self.request_id = request_id


class MewsAuthError(MewsError):
    """401: the client or access token is wrong, expired or lacks permission. Retrying cannot help."""


class MewsRequestError(MewsError):
    """400, 403, 404, 409, 413: Mews refused the request as made; ``message`` is meant for staff (403)."""


class MewsUnavailable(MewsError):
    """Mews did not answer usefully (network, 408, 429, 5xx) within the retry budget; try later."""


class MewsOutcomeUnknown(MewsUnavailable):
    """A write that is not safe to repeat may have reached Mews, but no answer came back (a timeout,
    a dropped connection, 408 or 5xx). The client never re-sends it; the caller looks up whether it
    landed before sending again."""
