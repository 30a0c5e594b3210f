"""Asterisk Manager Interface (AMI) framing, with no I/O.

Bytes go in through :meth:`AmiParser.feed`, whole :class:`Message` objects come out; actions go out
through :func:`encode_message`. The same code serves both ends: the bridge's client parses
responses and events, the AMI simulator in ``mews-bridge-hardware-mocks`` parses actions.

Wire format (Asterisk 22, AMI 11.0.0):

* on connect the server sends one banner line, ``Asterisk Call Manager/11.0.0\\r\\n``, with no blank
  line after it;
* then every message is ``Key: Value\\r\\n`` lines ended by an empty line; keys may repeat
  (``Output:``, ``Variable:``) and values may be empty (``UserField: ``).

A block is decoded only once its terminating blank line has arrived, so a UTF-8 character split
across two TCP reads is never damaged (panoramisk loses it: docs/reference/asterisk-ami.md, section 6).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

BANNER_PREFIX = "Asterisk Call Manager/"

_SEP = b"\r\n\r\n"
_SEP_TEXT = "\r\n\r\n"
# Asterisk < 14 answered ``Command`` with raw CLI text; we turn it into ``Output:`` pairs.
_FOLLOWS = "Response: Follows"
_END_COMMAND = "--END COMMAND--"
_FOLLOWS_HEADERS = frozenset({"response", "privilege", "actionid", "message"})

HeaderValue = str | int | bool | Sequence[str]
"""A header value for :func:`make_message`: a sequence repeats the key once per item."""


class AmiProtocolError(Exception):
    """The peer sent something that is not AMI (an oversized message, a missing banner)."""


class Message:
    """One AMI message: its ``(key, value)`` pairs in wire order.

    The first pair says the kind (``Action``, ``Response`` or ``Event``) and the name. Lookups by
    key are case-insensitive and return the first value; :meth:`get_all` returns every value of a
    repeated key (``Output``, ``Variable``).

    A message read from the wire keeps its text and splits it into pairs only when a field other
    than the kind, the name or the ActionID is asked for: the reader sorts answers from events
    without paying for fields that nobody reads (events without a subscriber, for one).
    """

    __slots__ = ("_exact", "_folded", "_head", "_pairs", "_text")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs: list[tuple[str, str]] | None = pairs
        self._text = ""
        self._head: tuple[str, str] | None = pairs[0] if pairs else ("", "")
        self._exact: dict[str, str] | None = None
        self._folded: dict[str, str] | None = None

    @classmethod
    def _from_text(cls, text: str) -> Message:
        """A message of ``Key: Value`` lines separated by CRLF, split into pairs on first use."""
        message = cls.__new__(cls)
        message._pairs = None
        message._text = text
        message._head = None
        message._exact = None
        message._folded = None
        return message

    @property
    def pairs(self) -> list[tuple[str, str]]:
        pairs = self._pairs
        if pairs is None:
            lines = self._text.split("\r\n")
            pairs = self._pairs = [line.partition(": ")[::2] for line in lines if line]
        return pairs

    def _first(self) -> tuple[str, str]:
        head = self._head
        if head is None:
            end = self._text.find("\r\n")
            key, _, value = (self._text if end < 0 else self._text[:end]).partition(": ")
            head = self._head = (key, value)
        return head

    @property
    def kind(self) -> str:
        """``Action``, ``Response`` or ``Event`` (the first key as sent)."""
        return self._first()[0]

    @property
    def name(self) -> str:
        """The value of the first key: the action or event name, or ``Success``/``Error``/…"""
        return self._first()[1]

    @property
    def is_event(self) -> bool:
        return self.kind == "Event"

    @property
    def action_id(self) -> str | None:
        """``ActionID``. Asterisk always spells it so; only answers are also searched ignoring case."""
        if self._pairs is None:
            text = self._text
            start = text.find("\r\nActionID: ")
            if start >= 0:
                start += 12
                end = text.find("\r\n", start)
                return text[start:] if end < 0 else text[start:end]
        else:
            value = self._exact_fields().get("ActionID")
            if value is not None:
                return value
        return self.get("ActionID") if self.kind != "Event" else None

    def _exact_fields(self) -> dict[str, str]:
        exact = self._exact
        if exact is None:
            # Reversed so that the first of repeated keys wins.
            exact = self._exact = dict(reversed(self.pairs))
        return exact

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self._exact_fields().get(key)
        if value is not None:
            return value
        folded = self._folded
        if folded is None:
            folded = self._folded = {k.lower(): v for k, v in reversed(self.pairs)}
        return folded.get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def get_all(self, key: str) -> list[str]:
        lowered = key.lower()
        return [v for k, v in self.pairs if k.lower() == lowered]

    def encode(self) -> bytes:
        return encode_message(self.pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other.pairs == self.pairs

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __repr__(self) -> str:
        # Never show a Login's secret, nor its MD5 digest (``Key`` next to ``AuthType``).
        hidden = {"secret", "key"} if "AuthType" in self else {"secret"}
        shown = ", ".join(f"{k}: {'***' if k.lower() in hidden else v}" for k, v in self.pairs)
        return f"<Message {shown}>"


class AmiParser:
    """Turns a byte stream into :class:`Message` objects.

    ``expect_banner`` is true on the client side: the first line is the server's banner, kept in
    :attr:`banner`. ``max_message_size`` bounds the memory a peer that never ends a message can take.
    """

    __slots__ = ("_buffer", "_expect_banner", "_max", "banner")

    def __init__(self, *, expect_banner: bool = True, max_message_size: int = 1 << 20) -> None:
        self._buffer = b""
        self._expect_banner = expect_banner
        self._max = max_message_size
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[Message]:
        """Add bytes read from the socket; return the messages they complete, in order."""
        buffer = self._buffer + data if self._buffer else data
        if self._expect_banner:
            end = buffer.find(b"\r\n")
            if end < 0:
                self._keep(buffer)
                return []
            self.banner = buffer[:end].decode("utf-8", "replace")
            self._expect_banner = False
            buffer = buffer[end + 2 :]
        end = buffer.rfind(_SEP)
        if end < 0:
            self._keep(buffer)
            return []
        self._buffer = buffer[end + 4 :]
        # The cut is at an ASCII separator, so no UTF-8 sequence straddles it.
        blocks = buffer[:end].decode("utf-8", "replace").split(_SEP_TEXT)
        messages: list[Message] = []
        append = messages.append
        index = 0
        count = len(blocks)
        while index < count:
            block = blocks[index]
            index += 1
            if block.startswith(_FOLLOWS):
                # Old-style command output may itself contain blank lines: join up to its end marker.
                while not block.rstrip().endswith(_END_COMMAND) and index < count:
                    block += _SEP_TEXT + blocks[index]
                    index += 1
                if not block.rstrip().endswith(_END_COMMAND):
                    self._keep((block + _SEP_TEXT).encode() + self._buffer)
                    break
                append(Message(_parse_follows(block)))
                continue
            if block.startswith("\r\n"):  # stray blank lines between messages
                block = block.lstrip("\r\n")
            if block:
                append(Message._from_text(block))
        self._check_size()
        return messages

    def _keep(self, buffer: bytes) -> None:
        self._buffer = buffer
        self._check_size()

    def _check_size(self) -> None:
        if len(self._buffer) > self._max:
            size = len(self._buffer)
            self._buffer = b""
            raise AmiProtocolError(
                f"Incomplete AMI message larger than {self._max} bytes ({size} bytes without an end)"
            )


def _parse_follows(block: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    lines = block.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r")
        key, sep, value = line.partition(": ")
        if not sep or key.lower() not in _FOLLOWS_HEADERS:
            break
        pairs.append((key, value))
        index += 1
    for line in lines[index:]:
        text = line.rstrip("\r")
        if text == _END_COMMAND:
            break
        pairs.append(("Output", text))
    return pairs


def _check(text: str, what: str) -> str:
    if "\r" in text or "\n" in text:
        # A line break would let a value (a guest name) inject a header or a whole action.
        raise ValueError(f"AMI {what} must not contain a line break: {text!r}")
    return text


def encode_message(pairs: Iterable[tuple[str, str]]) -> bytes:
    """The wire form of a message; keys and values must be single-line."""
    lines: list[str] = []
    for key, value in pairs:
        if not key or ":" in key:
            raise ValueError(f"Invalid AMI key: {key!r}")
        lines.append(f"{_check(key, 'key')}: {_check(value, 'value')}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8")


def _text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def make_message(
    kind: str,
    name: str,
    headers: Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]] = (),
    *,
    action_id: str | None = None,
) -> Message:
    """Build a message: ``make_message("Action", "DBPut", {"Family": "hotel/101", ...}, action_id="7")``.

    ActionID follows the first header as Asterisk orders it; booleans become ``true``/``false``; a
    list value repeats its key (``{"Variable": ["A=1", "B=2"]}``).
    """
    pairs: list[tuple[str, str]] = [(kind, name)]
    if action_id is not None:
        pairs.append(("ActionID", action_id))
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if isinstance(value, str | int | bool):
            pairs.append((key, _text(value)))
        else:
            pairs.extend((key, _text(item)) for item in value)
    return Message(pairs)
