"""Input from outside (Mews, the PBX, a device) checked where it enters, and refusals in plain words.

Two checks every entry point shares: text must be encodable as UTF-8 (JSON allows a lone surrogate
such as ``"\\ud800"``, which then breaks the journal, the log or the next request), and a pydantic
error becomes a sentence a front-desk user can act on ("Field `Data.CopyCount` must be at most 100"),
never pydantic's own text.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from pydantic import ValidationError

_MEANINGS = {
    "missing": "is missing",
    "dict_type": "is not an object",
    "model_type": "is not an object",
    "model_attributes_type": "is not an object",
    "list_type": "is not a list",
    "tuple_type": "is not a list",
    "string_type": "is not text",
    "string_unicode": "is not text",
    "bool_type": "is not true or false",
    "bool_parsing": "is not true or false",
    "int_type": "is not a whole number",
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "int_parsing_size": "is too large",
    "float_type": "is not a valid amount",
    "float_parsing": "is not a valid amount",
    "finite_number": "is not a valid amount",
    "decimal_type": "is not a valid amount",
    "decimal_parsing": "is not a valid amount",
    "decimal_max_digits": "is not a valid amount",
    "decimal_max_places": "is not a valid amount",
    "decimal_whole_digits": "is not a valid amount",
    "datetime_type": "is not a valid date and time",
    "datetime_parsing": "is not a valid date and time",
    "datetime_from_date_parsing": "is not a valid date and time",
    "datetime_object_invalid": "is not a valid date and time",
    "date_type": "is not a valid date",
    "date_parsing": "is not a valid date",
    "date_from_datetime_parsing": "is not a valid date",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "too_long": "is too long",
    "string_too_long": "is too long",
    "literal_error": "is not one of the accepted values",
    "enum": "is not one of the accepted values",
}
_UNION_TAGS = frozenset(
    {"str", "int", "float", "bool", "decimal", "datetime", "date", "none", "list", "dict"}
)


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_guid(value: object) -> TypeGuard[str]:
    """Mews identifiers are GUIDs; anything else in an id field is garbage."""
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


def is_encodable(text: str) -> bool:
    """False for text UTF-8 cannot carry (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unencodable_path(value: Any, root: str = "") -> str | None:
    """The path (``Data.Bill.Items[2].Name``) of the first string or key in ``value`` that is not
    encodable as UTF-8, or None. Walks without recursion, so any depth is safe."""
    stack: list[tuple[str, Any]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not is_encodable(item):
                return path or "(text)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and not is_encodable(key):
                    return f"{path}.(a name)" if path else "(a name)"
                stack.append((f"{path}.{key}" if path else str(key), child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return None


def deeper_than(value: Any, limit: int) -> bool:
    """True if ``value`` nests objects or lists more than ``limit`` levels deep (walked without recursion)."""
    stack: list[tuple[int, Any]] = [(0, value)]
    while stack:
        depth, item = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((depth + 1, child) for child in children)
    return False


def field_path(loc: tuple[int | str, ...], root: str = "") -> str:
    """``("Bill", "Items", 2, "UnitAmount")`` → ``Bill.Items[2].UnitAmount`` (under ``root`` if given)."""
    path = root
    for part in loc:
        if isinstance(part, str) and ("[" in part or part in _UNION_TAGS):
            continue  # pydantic names the member of a union it tried, which means nothing to staff
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(the whole value)"


def _meaning(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}"
    return _MEANINGS.get(kind, "is not valid")


def describe_validation_error(exc: ValidationError, root: str = "") -> str:
    """The first problem as ``Field `Data.Bill.Items[2].UnitAmount` is not a valid amount.`` (plus a count)."""
    errors = exc.errors(include_url=False, include_input=False, include_context=True)
    if not errors:
        return f"Field `{root or '(the whole value)'}` is not valid."
    first = errors[0]
    more = len(errors) - 1
    tail = f" (and {more} more {'problem' if more == 1 else 'problems'})" if more else ""
    return f"Field `{field_path(tuple(first['loc']), root)}` {_meaning(first)}{tail}."


def describe_unencodable(path: str) -> str:
    return f"Field `{path}` contains characters that are not valid text."
