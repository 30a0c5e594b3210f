"""Keeping secrets out of logs and diagnostics.

Two nets: values known to be secret (tokens, passwords from settings) are replaced wherever they
appear, and anything that looks like a credential assignment (``AccessToken=…``, ``"Secret": "…"``)
is masked even if nobody registered it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr

MASK = "***"
_SECRET_WORDS = frozenset({"secret", "token", "password", "passwd", "pin", "credential", "credentials"})
_SECRET_LAST_WORDS = frozenset({"key", "dsn"})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# Credential assignments are found in two linear passes: every run of letters once, and for a run
# naming a credential the separator and value after it. (One pattern with ``[A-Za-z_]*`` around the
# keyword would backtrack over every start inside a long run: quadratic, seconds on a 10 kB id.)
_LETTER_RUN = re.compile(r"[A-Za-z_]+")
_SECRET_IN_NAME = re.compile(r"token|secret|password|passwd", re.IGNORECASE)
_SEPARATOR_AND_VALUE = re.compile(r"""(?P<sep>["']?\s*[:=]\s*["']?)(?P<value>[^"'\s;&,}]+)""")
_MIN_SECRET_LENGTH = 4


class Redactor:
    """Masks registered secret values and credential-looking assignments in text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, *values: str | SecretStr | None) -> None:
        with self._lock:
            for value in values:
                plain = value.get_secret_value() if isinstance(value, SecretStr) else value
                if plain and len(plain) >= _MIN_SECRET_LENGTH:
                    self._secrets.add(plain)
            longest_first = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, longest_first))) if longest_first else None

    def add_from(self, data: Any) -> None:
        """Register every ``SecretStr`` and every value under a secret-looking key in ``data``."""
        self.add(*_secret_values(data))

    def redact(self, text: str) -> str:
        """``text`` with secrets masked; linear in its length, so a huge value cannot stall the loop."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return _mask_assignments(text)


def _mask_assignments(text: str) -> str:
    """``AccessToken=abc`` → ``AccessToken=***``, ``"Secret": "x"`` → ``"Secret": "***"``."""
    parts: list[str] = []
    done = 0
    for run in _LETTER_RUN.finditer(text):
        if run.start() < done or not _SECRET_IN_NAME.search(run.group()):
            continue
        assignment = _SEPARATOR_AND_VALUE.match(text, run.end())
        if assignment is None:
            continue
        parts += [text[done : assignment.start("value")], MASK]
        done = assignment.end()
    return "".join(parts) + text[done:] if parts else text


def is_secret_key(key: object) -> bool:
    """``access_token``, ``AccessToken``, ``api_key``, ``pin`` are secret; ``key_count`` is not."""
    words = [word.lower() for word in _WORD.findall(str(key))]
    return bool(words) and (words[-1] in _SECRET_LAST_WORDS or not _SECRET_WORDS.isdisjoint(words))


def _secret_values(data: Any, secret_key: bool = False) -> Iterable[str | SecretStr]:
    if isinstance(data, SecretStr) or (isinstance(data, str) and secret_key):
        yield data
    elif isinstance(data, Mapping):
        for key, value in data.items():
            yield from _secret_values(value, secret_key or is_secret_key(key))
    elif hasattr(data, "__dict__") and not isinstance(data, type):
        yield from _secret_values(vars(data), secret_key)
    elif isinstance(data, (list, tuple, set)):
        for item in data:
            yield from _secret_values(item, secret_key)


def redact_data(data: Mapping[str, Any], extra_keys: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of ``data`` with values under secret-looking keys (or ``extra_keys``) masked."""
    extra = {key.lower() for key in extra_keys}

    def table(value: Mapping[Any, Any], hide: bool) -> dict[Any, Any]:
        return {k: walk(v, hide or is_secret_key(k) or str(k).lower() in extra) for k, v in value.items()}

    def walk(value: Any, hide: bool) -> Any:
        if isinstance(value, Mapping):
            return table(value, hide)
        if isinstance(value, (list, tuple)):
            return [walk(item, hide) for item in value]
        if isinstance(value, SecretStr) or (hide and value is not None):
            return MASK
        return value

    return table(data, False)


redactor = Redactor()
"""The process-wide redactor the log filter uses."""
