from __future__ import annotations

import io
import json
import logging

import pytest

from mews_bridge.logs import configure_logging
from mews_bridge.redaction import redactor

TOKEN = "C66EF7B239D24632943D115EDE9CB810-EA00F8FD8294692C940F6B5A8F9453D"


@pytest.fixture
def captured():
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    handler = configure_logging("DEBUG", "text", stream)
    yield stream, handler
    root.removeHandler(handler)
    root.setLevel(level)
    for old in handlers:
        if old not in root.handlers:
            root.addHandler(old)


def test_registered_secrets_never_reach_a_log_line(captured):
    stream, _ = captured
    redactor.add(TOKEN)
    log = logging.getLogger("mews_bridge.test")
    log.info("token in message %s", TOKEN)
    log.warning("token in args: %r", {"AccessToken": TOKEN})
    try:
        raise RuntimeError(f"request failed with {TOKEN}")
    except RuntimeError:
        log.exception("failure")
    log.info("extra field", extra={"cookie": f"AccessToken={TOKEN}"})
    text = stream.getvalue()
    assert TOKEN not in text
    assert "token in message ***" in text
    assert "RuntimeError: request failed with ***" in text


def test_credential_assignments_are_masked_even_when_unregistered(captured):
    stream, _ = captured
    logging.getLogger("x").error('Cookie: ClientToken=abc123secret; AccessToken=def456 "Password": "pw-789"')
    text = stream.getvalue()
    for value in ("abc123secret", "def456", "pw-789"):
        assert value not in text


def test_json_format_is_one_object_per_line_and_masked():
    stream = io.StringIO()
    root = logging.getLogger()
    handler = configure_logging("INFO", "json", stream)
    try:
        redactor.add("SECRET-VALUE-42")
        logging.getLogger("mews_bridge.json").info("printing %s", "SECRET-VALUE-42", extra={"device": "Desk"})
    finally:
        root.removeHandler(handler)
    entry = json.loads(stream.getvalue().strip())
    assert entry["message"] == "printing ***"
    assert entry["device"] == "Desk"
    assert entry["level"] == "INFO"


@pytest.mark.timeout(20)  # a quadratic redactor takes hours on these; the linear one a fraction of a second
@pytest.mark.parametrize(
    "filler",
    ["a" * 1_000_000, "token" * 200_000, "ab=" * 333_333, "Token " * 166_666, "x" * 999_990 + "=" * 10],
)
def test_the_redactor_handles_a_megabyte_of_adversarial_text_and_still_masks(filler):
    text = f"{filler} AccessToken={TOKEN}x; {filler[:100]}"
    redacted = redactor.redact(text)
    assert f"AccessToken={TOKEN}x" not in redacted
    assert "AccessToken=***" in redacted
    assert redacted.startswith(filler[:1000])


def test_long_values_are_clipped_in_log_lines_and_bad_text_is_escaped(captured):
    stream, _ = captured
    lock_id = "L" * 100_000
    logging.getLogger("mews_bridge.test").warning("Unknown lock %s for room %s", lock_id, "101")
    logging.getLogger("mews_bridge.test").warning("Event id %s", "\ud800")
    lines = stream.getvalue().splitlines()
    assert len(lines[0]) < 1_200
    assert lines[0].endswith("… (100000 characters) for room 101")
    assert lines[1].endswith("Event id \\ud800")
