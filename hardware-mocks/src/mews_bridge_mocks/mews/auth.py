"""Who may call: the one ClientToken/AccessToken pair of the simulated integration."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

# Mews' public demo tokens (the Gross pricing demo's first pair; docs/reference/mews-connector-api.md).
DEMO_CLIENT_TOKEN = "E0D439EE522F44368DC78E1BFB03710C-D24FB11DBE31D4621C4817E028D9E1D"
DEMO_ACCESS_TOKEN = "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D"

_COOKIE_PAIR = re.compile(r"([^=\s;]+)=([^\s;]*)")


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Credentials:
    client_token: str
    access_token: str

    def rejection(self, client_token: object, access_token: object) -> str | None:
        """Why a token pair is refused (the 401 message), or None when it is accepted."""
        if not _same(client_token, self.client_token):
            return "Invalid ClientToken"
        if not _same(access_token, self.access_token):
            return "Invalid AccessToken"
        return None


def parse_cookie(header: str | None) -> dict[str, str] | None:
    """Cookie pairs the way Mews reads them: ``name=value`` joined by ``; ``, no spaces around ``=``.

    None when the header is missing or any pair is malformed.
    """
    if not header:
        return None
    pairs = {}
    for part in header.split(";"):
        match = _COOKIE_PAIR.fullmatch(part.lstrip(" "))
        if match is None:
            return None
        pairs[match[1]] = match[2]
    return pairs
